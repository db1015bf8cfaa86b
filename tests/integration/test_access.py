"""Who may do what, on both stores (a local directory and S3 on moto's server): signed versions that cannot
be rewritten unseen, production only for signed versions, and approvals by identities other than the ones
that made the version."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from registry.access import PLATFORM_POLICY, AccessPolicy, Trust
from registry.records import VersionRecord
from registry.registry import PromotionRefused, Registry
from registry.signing import SignatureInvalid, SigningKey, TrustedKeys, create_key

PASSING = {"policy": "t", "passed": True, "rules": []}


@pytest.fixture
def keys(tmp_path) -> dict[str, SigningKey]:
    """Three people's keys, all trusted by the platform (`<identity>.pub` in one folder)."""
    return {who: create_key(tmp_path / "keys" / f"{who}.pem", tmp_path / "trusted" / f"{who}.pub")
            for who in ("alice", "bob", "carol")}


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "registry")
    return f"s3://{request.getfixturevalue('s3_bucket')}/team-a"


def as_(who: str | None, url: str, tmp_path: Path, policy: AccessPolicy = PLATFORM_POLICY) -> Registry:
    """The registry at `url` as `who` sees it: signing with their key (None: no key), trusting all three."""
    key = SigningKey.load(tmp_path / "keys" / f"{who}.pem") if who else None
    return Registry.from_url(url, Trust(TrustedKeys.from_folder(tmp_path / "trusted"), key, policy))


def rewrite_together(registry: Registry, record: VersionRecord, file: str, content: bytes) -> None:
    """What a bucket writer without a key can do: replace a file and the record, checksums consistent."""
    prefix = f"models/{record.name}/versions/{record.version}"
    registry.store.put_bytes(f"{prefix}/{file}", content)
    stored = json.loads(registry.store.get_bytes(f"{prefix}/version.json")[0])
    stored["files"][file] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    registry.store.put_bytes(f"{prefix}/version.json", json.dumps(stored).encode())


def test_a_signed_version_downloads_and_verifies_with_the_stock_model_signing_tool(store_url, tmp_path, keys,
                                                                                   artifact):
    from model_signing import verifying

    registry = as_("alice", store_url, tmp_path)
    record = registry.register("general", artifact, gate=PASSING)
    assert record.signer == keys["alice"].fingerprint and record.created_by == "alice"
    assert registry.verify(record) == "alice"
    folder = registry.download("general", 1, tmp_path / "downloaded")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer",
                                                       "version.json", "version.sig"]
    # The folder as delivered verifies with model-signing's own API (what `model_signing verify key` runs).
    verifying.Config().use_elliptic_key_verifier(public_key=tmp_path / "trusted" / "alice.pub").verify(
        folder, folder / "version.sig")
    registered = registry.events("general")[0]
    assert (registered.actor, registered.actor_verified_by) == ("alice", "signature")


def test_files_and_record_rewritten_together_are_refused_at_download_and_promotion(store_url, tmp_path, keys,
                                                                                  artifact):
    registry = as_("alice", store_url, tmp_path)
    record = registry.register("general", artifact, gate=PASSING)
    rewrite_together(registry, record, "model.safetensors", b"backdoored weights")
    # The checksums agree with the rewritten record, so only the signature can tell.
    tampered = registry.get_version("general", 1)
    assert tampered.files["model.safetensors"].sha256 == hashlib.sha256(b"backdoored weights").hexdigest()
    with pytest.raises(SignatureInvalid, match=r"general:1: model.safetensors, version.json differ from what alice "
                                               r"signed: the files or the record were rewritten"):
        registry.download("general", 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(PromotionRefused, match="differ from what alice signed"):
        registry.promote("general", 1)
    assert registry.get_alias("general", "production") is None


def test_a_record_rewritten_alone_or_a_signature_removed_is_refused(store_url, tmp_path, keys, artifact):
    registry = as_("alice", store_url, tmp_path)
    registry.register("general", artifact, gate=PASSING)
    registry.register("general", artifact, gate={**PASSING, "passed": False})
    key = "models/general/versions/2/version.json"
    stored = json.loads(registry.store.get_bytes(key)[0])
    stored["gate"]["passed"] = True  # a failed verdict turned into a pass
    registry.store.put_bytes(key, json.dumps(stored).encode())
    with pytest.raises(SignatureInvalid, match=r"general:2: version.json differs? from what alice signed"):
        registry.download("general", 2, tmp_path / "out")
    # Emptying the signature leaves a record that names its signer: refused, not taken as unsigned.
    registry.store.put_bytes("models/general/versions/1/version.sig", b"")
    with pytest.raises(SignatureInvalid, match="not a model-signing key bundle"):
        registry.download("general", 1, tmp_path / "out")


def test_a_version_signed_by_an_untrusted_key_is_refused(store_url, tmp_path, keys, artifact):
    create_key(tmp_path / "keys" / "mallory.pem", tmp_path / "elsewhere" / "mallory.pub")
    as_("mallory", store_url, tmp_path).register("general", artifact, gate=PASSING)
    with pytest.raises(SignatureInvalid, match=r"general:1 is signed by key [0-9a-f]{16}…, which is not among the "
                                               "trusted keys"):
        as_("alice", store_url, tmp_path).download("general", 1, tmp_path / "out")


def test_production_takes_only_signed_versions(store_url, tmp_path, keys, artifact):
    unsigned = as_(None, store_url, tmp_path).register("general", artifact, gate=PASSING)
    registry = as_("alice", store_url, tmp_path)
    assert unsigned.signer is None and registry.verify(unsigned) is None  # unsigned, and nothing requires it yet
    registry.download("general", 1, tmp_path / "staging")  # `candidate` and the rest take unsigned versions
    with pytest.raises(PromotionRefused, match="general:1 is unsigned, and the access policy requires a signature "
                                               "of a holder of production"):
        registry.promote("general", 1)
    with pytest.raises(PromotionRefused, match="is unsigned"):
        registry.promote("general", 1, force_reason="on-call says so")  # forcing skips the gate, not this
    signed = registry.register("general", artifact, gate=PASSING)
    moved = registry.promote("general", signed.version)
    assert moved.version == 2 and registry.events("general")[-1].details["signed_by"] == "alice"
    # A policy requiring signatures everywhere refuses the unsigned version even at download.
    everywhere = as_("alice", store_url, tmp_path, AccessPolicy(signatures_required_for=["*"]))
    with pytest.raises(SignatureInvalid, match="requires a signature of every version"):
        everywhere.download("general", 1, tmp_path / "out")


APPROVALS = AccessPolicy(signatures_required_for=["production"], approvals={"production": 1})


def test_production_needs_an_approval_by_someone_other_than_its_registrant(store_url, tmp_path, keys, artifact):
    registry = as_("alice", store_url, tmp_path, APPROVALS)
    record = registry.register("general", artifact, gate=PASSING)  # alice trains and registers it
    registry.approve("general", 1, "production", reason="I trained it and it is good")
    with pytest.raises(PromotionRefused, match=r"needs 1 signed approval by distinct trusted identities other than "
                                               r"alice \(registrant\) and alice \(trainer\); it has 0"):
        registry.promote("general", 1)
    with pytest.raises(PromotionRefused, match="it has 0"):
        registry.promote("general", 1, force_reason="hotfix")  # a forced promotion needs one too
    bob = as_("bob", store_url, tmp_path, APPROVALS)
    bob.approve("general", 1, "production", reason="reviewed the eval report")
    assert bob.approvals(record, "production") == ["alice", "bob"]
    moved = registry.promote("general", 1, reason="approved")
    assert moved.version == 1
    promoted = registry.events("general")[-1]
    assert promoted.details["approved_by"] == ["bob"] and promoted.details["signed_by"] == "alice"
    approvals = [e for e in registry.events("general") if e.event == "approved"]
    assert [(e.actor, e.actor_verified_by) for e in approvals] == [("alice", "signature"), ("bob", "signature")]


def test_an_altered_or_misplaced_approval_does_not_count(store_url, tmp_path, keys, artifact):
    registry = as_("alice", store_url, tmp_path, APPROVALS)
    first = registry.register("general", artifact, gate=PASSING)
    second = registry.register("general", artifact, gate=PASSING)
    as_("bob", store_url, tmp_path, APPROVALS).approve("general", 1, "production", reason="ok")
    # Copy bob's approval onto version 2, and rewrite its statement to match: the signature no longer does.
    event_key = next(k for k in registry.store.list_keys("models/general/events/")
                     if json.loads(registry.store.get_bytes(k)[0])["event"] == "approved")
    event = json.loads(registry.store.get_bytes(event_key)[0])
    event["version"] = event["details"]["statement"]["version"] = 2
    event["details"]["statement"]["record_sha256"] = hashlib.sha256(
        registry.store.get_bytes("models/general/versions/2/version.json")[0]).hexdigest()
    registry.store.put_bytes(event_key.replace(".json", "x.json"), json.dumps(event).encode())
    assert registry.approvals(second, "production") == []
    assert registry.approvals(first, "production") == ["bob"]
    with pytest.raises(PromotionRefused, match="it has 0"):
        registry.promote("general", 2)
    # An approval by a key the platform does not trust is refused when made.
    create_key(tmp_path / "keys" / "mallory.pem", tmp_path / "elsewhere" / "mallory.pub")
    with pytest.raises(SignatureInvalid, match="not among the trusted keys"):
        as_("mallory", store_url, tmp_path, APPROVALS).approve("general", 2, "production", reason="trust me")


def test_a_protected_alias_cannot_be_set_around_promotion(store_url, tmp_path, keys, artifact):
    unsigned = as_(None, store_url, tmp_path).register("general", artifact, gate=PASSING)
    registry = as_("alice", store_url, tmp_path)
    registry.set_alias("general", "candidate", unsigned.version)
    with pytest.raises(PromotionRefused, match="is unsigned"):
        registry.set_alias("general", "production", unsigned.version)
    assert registry.get_alias("general", "production") is None


def test_package_refuses_a_rewritten_version_before_building(prefect_harness, tmp_path, artifact):
    from flows.package import package
    from flows.steps.platform import Platform

    registry = Platform.from_env().registry()  # the suite's signing key and trusted keys
    record = registry.register(f"pkg-{tmp_path.name[-8:].lower().strip('_-')}".replace("_", "-"), artifact,
                               gate=PASSING)
    rewrite_together(registry, record, "config.json", b'{"embed_dim": 9}')
    with pytest.raises(SignatureInvalid, match=f"{record.ref}: config.json, version.json differ from what pytest "
                                               "signed"):
        package(record.ref)


def test_the_trainer_named_at_registration_cannot_approve_either(store_url, tmp_path, keys, artifact):
    registry = as_("alice", store_url, tmp_path, APPROVALS)
    record = registry.register("general", artifact, gate=PASSING, trained_by="carol")  # carol's job, alice registers
    assert (record.created_by, record.trained_by) == ("alice", "carol")
    as_("carol", store_url, tmp_path, APPROVALS).approve("general", 1, "production", reason="my run looks fine")
    with pytest.raises(PromotionRefused, match=r"other than alice \(registrant\) and carol \(trainer\); it has 0"):
        registry.promote("general", 1)
    lenient = AccessPolicy(signatures_required_for=["production"], approvals={"production": 1},
                           distinct_from=["registrant"])
    assert as_("alice", store_url, tmp_path, lenient).promote("general", 1).version == 1  # carol counts there
