"""A version.json written by whoever can write the bucket cannot place files outside the download folder,
and names with a trailing newline are no names: on the local store and on S3 (moto)."""

import json

import pytest

from registry.names import InvalidName
from registry.records import Event
from registry.registry import ChecksumMismatch, Registry, RegistryError, TamperedRecord


@pytest.fixture
def artifact(tmp_path):
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    (folder / "config.json").write_text("{}")
    return folder


def _tamper(registry: Registry, name: str, bad_name: str) -> None:
    """Rewrite version 1's record so it names `bad_name`, as an attacker with write access would."""
    key = f"models/{name}/versions/1/version.json"
    record = json.loads(registry.store.get_bytes(key)[0])
    record["files"][bad_name] = record["files"]["config.json"]
    registry.store.put_bytes(key, json.dumps(record).encode())


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("bad_name", ["../../escaped.json", "{outside}/escaped.json", "a/../../../escaped.json"])
def test_a_version_naming_a_file_outside_is_refused_before_any_write(registry, artifact, tmp_path, bad_name):
    registry.register("m", artifact)
    outside = tmp_path / "outside"
    outside.mkdir()
    _tamper(registry, "m", bad_name.format(outside=outside))
    work = tmp_path / "work"
    work.mkdir()
    before = _listing(tmp_path)
    with pytest.raises(TamperedRecord, match="m:1 has an invalid version.json .*nothing was downloaded"):
        registry.download("m", 1, work / "target")
    assert _listing(tmp_path) == before  # nothing written anywhere: no target, no staging, nothing outside
    with pytest.raises(TamperedRecord):
        registry.resolve("m:1")


def test_a_checksum_failure_leaves_nothing_behind(registry, artifact, tmp_path):
    registry.register("m", artifact)
    key = "models/m/versions/1/config.json"
    registry.store.put_bytes(key, b'{"altered": true}')
    (tmp_path / "work").mkdir()
    with pytest.raises(ChecksumMismatch, match="config.json"):
        registry.download("m", 1, tmp_path / "work" / "target")
    assert list((tmp_path / "work").iterdir()) == []


def test_registering_a_symlink_out_of_the_artifact_is_refused(registry, artifact, tmp_path):
    (tmp_path / "private.key").write_text("secret")
    (artifact / "extra.json").symlink_to(tmp_path / "private.key")
    with pytest.raises(RegistryError, match="through a symlink; nothing was registered"):
        registry.register("m", artifact)
    assert registry.list_versions("m") == []


@pytest.mark.parametrize("name", ["x\n", "general\n", "../x", "X", "a" * 65])
def test_names_full_match_everywhere(registry, artifact, name):
    with pytest.raises(InvalidName):
        registry.register(name, artifact)
    registry.register("ok", artifact)
    with pytest.raises(InvalidName):
        registry.set_alias("ok", name, 1)
    with pytest.raises(ValueError):
        Event(event="registered", model=name, actor="me")
    with pytest.raises(ValueError):
        Event(event="alias_set", model="ok", alias=name, actor="me")


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("event_key", "../../victim/archived/1.json", "event_key: String should match pattern"),
    ("history", [-1], "history.0: Input should be greater than or equal to 1"),
    ("history", [10**30], "history.0: Input should be less than or equal to 999999999"),
    ("version", 0, "version: Input should be greater than or equal to 1"),
])
def test_a_tampered_alias_record_is_refused_and_writes_nothing(registry, artifact, field, value, problem):
    """An alias record rewritten by whoever can write the bucket: its event key once became a store key
    unchecked, and the history of another model's alias gained an `archived` marker over its production
    version. Now the record is refused when read, and the victim is untouched."""
    for name in ("victim", "m"):
        registry.register(name, artifact)
        registry.set_alias(name, "production", 1)
    key = "models/m/aliases/production.json"
    record = json.loads(registry.store.get_bytes(key)[0])
    record[field] = value
    record["event"]["model"] = "victim"
    registry.store.put_bytes(key, json.dumps(record).encode())
    with pytest.raises(TamperedRecord, match=problem.replace("(", r"\(").replace(")", r"\)")):
        registry.events("m")
    assert [v.version for v in registry.list_versions("victim")] == [1]
    assert not any("archived" in k for k in registry.store.list_keys("models/victim/"))


def test_an_alias_record_never_restores_its_event_into_another_models_log(registry, artifact):
    for name in ("victim", "m"):
        registry.register(name, artifact)
    registry.set_alias("m", "production", 1)
    key = "models/m/aliases/production.json"
    record = json.loads(registry.store.get_bytes(key)[0])
    record["event"]["model"], record["event_key"] = "victim", "20260101T000000000000Z-planted.json"
    registry.store.put_bytes(key, json.dumps(record).encode())
    before = registry.events("victim")
    registry.events("m")  # reconciles m's log: the planted event belongs to no log it may write
    assert registry.events("victim") == before
    assert not any("planted" in k for k in registry.store.list_keys("models/"))


def test_one_tampered_record_is_named_and_the_search_goes_on_over_the_rest(registry, artifact):
    for name in ("a", "b", "m"):
        registry.register(name, artifact, lineage={"datasets": {"train": "coco@aaa"}})
    _tamper(registry, "m", "../escaped.json")
    search = registry.search(dataset="coco@aaa")
    assert [(r.name, r.version) for r in search.records] == [("a", 1), ("b", 1)]
    (refused,) = search.refused
    assert refused.startswith("m:1 has an invalid version.json")
    with pytest.raises(TamperedRecord):
        registry.list_versions("m")  # one model's own list still refuses outright
