"""The registry suite, run against both stores: a local directory and S3 (moto's server on 127.0.0.1)."""

import json
import multiprocessing as mp

import pytest

from registry.names import InvalidName
from registry.registry import ChecksumMismatch, PromotionRefused, Registry, RegistryError, sha256_file
from registry.store import PreconditionFailed

PASSING = {"policy": "t", "passed": True, "rules": []}
FAILING = {"policy": "t", "passed": False, "rules": [{"rule": "floor", "passed": False, "reason": "x/t2i_r1 < 0.3"}]}


def test_register_records_sha256_of_every_file_and_numbers_versions(registry, artifact):
    first = registry.register("general", artifact, metrics={"x/t2i_r1": 0.4}, gate=PASSING, lineage={"a": 1})
    second = registry.register("general", artifact)
    assert (first.version, second.version) == (1, 2)
    assert first.files.keys() == {"model.safetensors", "config.json", "tokenizer/tokenizer.json"}
    assert first.files["config.json"].sha256 == sha256_file(artifact / "config.json")
    stored = json.loads(registry.store.get_bytes("models/general/versions/1/version.json")[0])
    assert stored["metrics"] == {"x/t2i_r1": 0.4}
    assert [e.event for e in registry.events("general")] == ["registered", "registered"]


def test_a_version_without_version_json_does_not_exist(registry, artifact):
    registry.register("general", artifact)
    registry.store.put_bytes("models/general/versions/2/claim.json", b"{}")  # an upload that died
    registry.store.put_bytes("models/general/versions/2/model.safetensors", b"half")
    assert [v.version for v in registry.list_versions("general")] == [1]
    with pytest.raises(RegistryError, match="no version 2"):
        registry.get_version("general", 2)
    assert registry.register("general", artifact).version == 3  # the claimed number is never reused


def test_resolve_references(registry, artifact):
    for _ in range(3):
        registry.register("general", artifact, gate=PASSING)
    registry.promote("general", 2)
    assert registry.resolve("general").version == 3
    assert registry.resolve("general:1").version == 1
    assert registry.resolve("general@production").version == 2
    with pytest.raises(RegistryError, match="no alias 'staging'"):
        registry.resolve("general@staging")
    with pytest.raises(RegistryError, match="no version 9"):
        registry.resolve("general:9")


def test_promotion_requires_a_passing_gate_unless_forced(registry, artifact):
    registry.register("general", artifact, gate=FAILING)
    registry.register("general", artifact)
    with pytest.raises(PromotionRefused, match="--force REASON.*gate verdict failed: x/t2i_r1 < 0.3"):
        registry.promote("general", 1)
    with pytest.raises(PromotionRefused, match="no gate verdict recorded"):
        registry.promote("general", 2)
    assert registry.get_alias("general", "production") is None
    registry.promote("general", 1, force_reason="hotfix approved by on-call")
    events = registry.events("general")
    assert [e.event for e in events] == ["registered", "registered", "promotion_refused", "promotion_refused",
                                         "promoted"]
    assert events[-1].details["forced"] == "hotfix approved by on-call"
    # The actor: on S3 the caller STS names (moto's fixed test user), locally only the label ALIGNOPS_ACTOR.
    on_s3 = registry.store.url.startswith("s3://")
    assert (events[-1].actor, events[-1].actor_verified_by) == (
        ("arn:aws:sts::123456789012:user/moto", "sts") if on_s3 else ("pytest", "label"))


def no_regression(candidate, incumbent):
    """A promotion check as the promote flow passes one: the candidate must not be worse than the holder."""
    if incumbent and candidate.metrics["m"] < incumbent.metrics["m"]:
        return [f"m = {candidate.metrics['m']} < incumbent {incumbent.version}'s {incumbent.metrics['m']}"]
    return []


def test_promotion_check_runs_against_the_current_holder(registry, artifact):
    for m in (0.5, 0.7, 0.6):
        registry.register("general", artifact, metrics={"m": m}, gate=PASSING)
    registry.promote("general", 2, check=no_regression)
    with pytest.raises(PromotionRefused, match="m = 0.6 < incumbent 2's 0.7"):
        registry.promote("general", 3, check=no_regression)
    registry.promote("general", 1, check=no_regression, force_reason="roll forward to a known-good build")
    assert registry.get_alias("general", "production").version == 1


def test_alias_moves_keep_history_and_roll_back(registry, artifact):
    for _ in range(3):
        registry.register("general", artifact, gate=PASSING)
    for version in (1, 3, 2):
        registry.promote("general", version)
    alias = registry.get_alias("general", "production")
    assert (alias.version, alias.history) == (2, [1, 3])
    assert [e.details["previous"] for e in registry.events("general") if e.event == "promoted"] == [None, 1, 3]
    assert registry.rollback("general", reason="p95 latency regression").version == 3
    assert registry.rollback("general").version == 1
    with pytest.raises(RegistryError, match="no earlier holder"):
        registry.rollback("general")
    rolled = [e for e in registry.events("general") if e.event == "rolled_back"]
    assert [(e.details["previous"], e.version) for e in rolled] == [(2, 3), (3, 1)]
    assert rolled[0].reason == "p95 latency regression"


def test_stale_compare_and_swap_is_refused(registry, artifact):
    registry.register("general", artifact)
    registry.register("general", artifact)
    registry.set_alias("general", "staging", 1)
    _, etag = registry.store.get_bytes("models/general/aliases/staging.json")
    registry.set_alias("general", "staging", 2, reason="moved by someone else")
    with pytest.raises(PreconditionFailed):
        registry.store.put_bytes("models/general/aliases/staging.json", b"{}", if_match=etag)
    with pytest.raises(PreconditionFailed):
        registry.store.put_bytes("models/general/aliases/staging.json", b"{}", if_none_match=True)


def test_download_verifies_every_file(registry, artifact, tmp_path):
    registry.register("general", artifact)
    out = registry.download("general", 1, tmp_path / "out")
    for name in ("model.safetensors", "config.json", "tokenizer/tokenizer.json"):
        assert (out / name).read_bytes() == (artifact / name).read_bytes()
    registry.store.put_bytes("models/general/versions/1/config.json", b'{"embed_dim": 9}')  # tampered
    with pytest.raises(ChecksumMismatch, match="file 'config.json' does not match its sha256"):
        registry.download("general", 1, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_archive_hides_a_version_and_blocks_promotion(registry, artifact):
    for _ in range(2):
        registry.register("general", artifact, gate=PASSING)
    registry.promote("general", 2)
    with pytest.raises(RegistryError, match="holds aliases \\['production'\\]"):
        registry.archive("general", 2)
    registry.archive("general", 1, reason="superseded")
    assert [v.version for v in registry.list_versions("general")] == [2]
    assert [v.version for v in registry.list_versions("general", include_archived=True)] == [1, 2]
    with pytest.raises(PromotionRefused, match="archived"):
        registry.promote("general", 1)


def test_search_by_alias_tag_dataset_and_metric(registry, artifact):
    registry.register("general", artifact, metrics={"coco/t2i_r1": 0.2}, lineage={"datasets": {"train": "coco@aaa"}})
    registry.register("general", artifact, metrics={"coco/t2i_r1": 0.4}, gate=PASSING, tags={"team": "vision"},
                      lineage={"datasets": {"train": "coco@bbb"}})
    registry.register("medical", artifact, metrics={"coco/t2i_r1": 0.5}, lineage={"datasets": {"train": "coco@aaa"}})
    registry.promote("general", 2)

    def found(**filters):
        return [(r.name, r.version) for r in registry.search(**filters).records]

    assert found(dataset="coco@aaa") == [("general", 1), ("medical", 1)]
    assert found(alias="production") == [("general", 2)]
    assert found(tag=("team", "vision")) == [("general", 2)]
    assert found(metric=("coco/t2i_r1", ">=", 0.4)) == [("general", 2), ("medical", 1)]
    assert found(name="medical", metric=("coco/t2i_r1", "<", 0.4)) == []


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "UPPER", "-x", "a..b", "x" * 65])
def test_names_are_validated(registry, artifact, name):
    with pytest.raises(InvalidName):
        registry.register(name, artifact)
    with pytest.raises(InvalidName):
        registry.get_alias("general", name)


def _register(url: str, folder: str) -> int:
    return Registry.from_url(url).register("general", folder).version


def _promote(url: str, version: int) -> str:
    try:
        Registry.from_url(url).promote("general", version, check=no_regression)
        return "promoted"
    except PromotionRefused:
        return "refused"


def test_eight_concurrent_registrations_get_eight_versions(registry, artifact):
    with mp.get_context("spawn").Pool(8) as pool:
        versions = pool.starmap(_register, [(registry.store.url, str(artifact))] * 8)
    assert sorted(versions) == list(range(1, 9))
    assert [v.version for v in registry.list_versions("general")] == list(range(1, 9))
    assert len(registry.events("general")) == 8


def test_eight_concurrent_promotions_leave_one_consistent_holder(registry, artifact):
    metrics = [0.3, 0.8, 0.1, 0.6, 0.9, 0.2, 0.7, 0.4]
    for m in metrics:
        registry.register("general", artifact, metrics={"m": m}, gate=PASSING)
    with mp.get_context("spawn").Pool(8) as pool:
        outcomes = pool.starmap(_promote, [(registry.store.url, v) for v in range(1, 9)])
    events = [e for e in registry.events("general") if e.event in ("promoted", "promotion_refused")]
    assert len(events) == 8 and sorted(e.version for e in events) == list(range(1, 9))  # every attempt, once
    promoted = [e for e in events if e.event == "promoted"]
    assert len(promoted) == outcomes.count("promoted") >= 1
    # Linearisable: each promotion replaced the one before it, and the alias holds the last.
    assert [e.details["previous"] for e in promoted] == [None] + [e.version for e in promoted[:-1]]
    alias = registry.get_alias("general", "production")
    assert alias.version == promoted[-1].version and alias.history == [e.version for e in promoted[:-1]]
    holders = [metrics[e.version - 1] for e in promoted]
    assert holders == sorted(holders)  # the non-regression check was never bypassed by a race


def test_a_version_records_its_embedding_space_and_the_galleries_it_can_query(registry, artifact):
    (artifact / "compat").mkdir()
    (artifact / "compat" / "general-v1.safetensors").write_bytes(b"projection")
    old = registry.register("general", artifact)
    shared = registry.register("general", artifact, space=old.ref)  # trained with bct against v1
    evidence = {"space": old.ref, "via": "projection", "projection": "compat/general-v1.safetensors",
                "metrics": {"xm/held/t2i_r1": 0.41}, "old_metrics": {"held/t2i_r1": 0.40}}
    projected = registry.register("general", artifact, compatibility=[evidence])
    stored = {v.version: v for v in registry.list_versions("general")}
    assert stored[1].embedding_space == "general:1" and stored[2].embedding_space == "general:1"
    assert stored[3].embedding_space == "general:3" and stored[3].compatibility_with("general:1").metrics == {
        "xm/held/t2i_r1": 0.41}
    assert [v.can_query("general:1") for v in (old, shared, projected)] == [True, True, True]
    assert not projected.can_query("general:2") and not old.can_query("general:3")


@pytest.mark.parametrize("evidence, message", [
    ({"space": "general:1", "via": "projection", "projection": "compat/missing.safetensors"}, "does not hold"),
    ({"space": "general:1", "via": "projection", "projection": "../outside.safetensors"}, "projection file"),
    ({"space": "general", "via": "bct"}, "should match pattern"),
])
def test_a_compatibility_record_names_a_space_and_one_of_its_own_files(registry, artifact, evidence, message):
    with pytest.raises((ValueError, RegistryError), match=message):
        registry.register("general", artifact, compatibility=[evidence])
    assert registry.list_versions("general") == []  # refused before anything was claimed or uploaded
