import json
import multiprocessing as mp

import pytest

from registry.names import InvalidName
from registry.registry import ChecksumMismatch, PromotionRefused, Registry, RegistryError, sha256_file
from registry.store import PreconditionFailed

PASSING = {"policy": "t", "passed": True, "rules": []}
FAILING = {"policy": "t", "passed": False, "rules": [{"rule": "floor", "passed": False, "reason": "x/t2i_r1 < 0.3"}]}


@pytest.fixture
def artifact(tmp_path):
    folder = tmp_path / "artifact"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x00weights" * 100)
    (folder / "config.json").write_text('{"embed_dim": 8}')
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def registry(tmp_path):
    return Registry.local(tmp_path / "registry")


def test_register_records_sha256_of_every_file_and_numbers_versions(registry, artifact):
    first = registry.register("general", artifact, metrics={"x/t2i_r1": 0.4}, gate=PASSING, lineage={"a": 1})
    second = registry.register("general", artifact)
    assert (first.version, second.version) == (1, 2)
    assert first.files.keys() == {"model.safetensors", "config.json", "tokenizer/tokenizer.json"}
    assert first.files["config.json"].sha256 == sha256_file(artifact / "config.json")
    root = registry.store.root / "models/general/versions/1"
    assert json.loads((root / "version.json").read_text())["metrics"] == {"x/t2i_r1": 0.4}
    assert [e.event for e in registry.events("general")] == ["registered", "registered"]


def test_a_version_without_version_json_does_not_exist(registry, artifact):
    registry.register("general", artifact)
    (registry.store.root / "models/general/versions/2").mkdir()
    (registry.store.root / "models/general/versions/2/claim.json").write_text("{}")  # a crashed upload
    assert [v.version for v in registry.list_versions("general")] == [1]
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
    with pytest.raises(PromotionRefused, match="gate verdict failed: x/t2i_r1 < 0.3.*--force"):
        registry.promote("general", 1)
    with pytest.raises(PromotionRefused, match="no gate verdict recorded"):
        registry.promote("general", 2)
    assert registry.get_alias("general", "production") is None
    registry.promote("general", 1, force_reason="hotfix approved by on-call")
    events = registry.events("general")
    assert [e.event for e in events] == ["registered", "registered", "promotion_refused", "promotion_refused",
                                         "promoted"]
    assert events[-1].details["forced"] == "hotfix approved by on-call" and events[-1].actor == "pytest"


def test_alias_moves_keep_history(registry, artifact):
    for _ in range(3):
        registry.register("general", artifact, gate=PASSING)
    for version in (1, 3, 2):
        registry.promote("general", version)
    alias = registry.get_alias("general", "production")
    assert (alias.version, alias.history) == (2, [1, 3])
    assert [e.details["previous"] for e in registry.events("general") if e.event == "promoted"] == [None, 1, 3]


def test_stale_compare_and_swap_is_refused(registry, artifact):
    registry.register("general", artifact)
    registry.set_alias("general", "staging", 1)
    _, etag = registry.store.get_bytes("models/general/aliases/staging.json")
    registry.set_alias("general", "staging", 1, reason="moved by someone else")
    with pytest.raises(PreconditionFailed):
        registry.store.put_bytes("models/general/aliases/staging.json", b"{}", if_match=etag)
    with pytest.raises(PreconditionFailed):
        registry.store.put_bytes("models/general/aliases/staging.json", b"{}", if_none_match=True)


def test_download_verifies_every_file(registry, artifact, tmp_path):
    registry.register("general", artifact)
    out = registry.download("general", 1, tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == (artifact / "model.safetensors").read_bytes()
    (registry.store.root / "models/general/versions/1/config.json").write_text('{"embed_dim": 9}')
    with pytest.raises(ChecksumMismatch, match="file 'config.json' does not match its sha256"):
        registry.download("general", 1, tmp_path / "again")
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "UPPER", "-x", "a..b", "x" * 65])
def test_names_are_validated(registry, artifact, name):
    with pytest.raises(InvalidName):
        registry.register(name, artifact)


def _register(root: str, folder: str) -> int:
    return Registry.local(root).register("general", folder).version


def test_concurrent_registrations_get_distinct_versions(registry, artifact):
    with mp.get_context("spawn").Pool(8) as pool:
        versions = pool.starmap(_register, [(str(registry.store.root), str(artifact))] * 8)
    assert sorted(versions) == list(range(1, 9))
    assert [v.version for v in registry.list_versions("general")] == list(range(1, 9))
    assert len(registry.events("general")) == 8
