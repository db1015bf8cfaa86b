"""The registry's pure parts on their own: names, references, records read from a store, and diffs."""

import pytest
from pydantic import ValidationError

from core.digest import canonical_digest
from registry.diff import diff_versions
from registry.names import InvalidName, ModelRef, check_name, parse_ref
from registry.records import AliasRecord, Event, FileEntry, GateRecord, VersionRecord


@pytest.mark.parametrize("name", ["general", "a", "x.y_z-1", "9" * 64])
def test_names_that_are_one_segment_pass(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "General", "-a", "a" * 65, "a/b", "a..b", "..", "a\n", " a", 3, None])
def test_names_that_could_traverse_nest_or_mislead_are_refused(name):
    with pytest.raises(InvalidName):
        check_name(name)


@pytest.mark.parametrize(("ref", "parsed"), [
    ("general", ModelRef("general")), ("general@production", ModelRef("general", "production")),
    ("general:12", ModelRef("general", None, 12))])
def test_references_parse_into_their_parts(ref, parsed):
    assert parse_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["general@", "general:", "general:x", "a@b@c", "a:1:2", "A@b", "a@../b", ""])
def test_malformed_references_are_refused(ref):
    with pytest.raises(InvalidName):
        parse_ref(ref)


def record(version: int, files: dict[str, str], metrics: dict[str, float], **lineage) -> VersionRecord:
    return VersionRecord(name="m", version=version, created_at="2026-12-07T00:00:00", created_by="t",
                         files={f: FileEntry(sha256=h, size=1) for f, h in files.items()}, metrics=metrics,
                         lineage=lineage)


def test_a_version_record_keeps_its_files_inside_its_folder():
    with pytest.raises(ValidationError, match="file"):
        record(1, {"../out": "x"}, {})
    with pytest.raises(ValidationError, match="file"):
        record(1, {"/etc/passwd": "x"}, {})


def test_a_gate_record_carries_a_policy_that_matches_its_digest():
    content = {"name": "team", "non_regression": {"*/mean_recall": 0.0}}
    kept = GateRecord(policy="team", passed=True, policy_content=content, policy_digest=canonical_digest(content))
    assert kept.policy_content == content
    with pytest.raises(ValidationError, match="does not match its digest"):
        GateRecord(policy="team", passed=True, policy_content=content | {"non_regression": {}},
                   policy_digest=canonical_digest(content))
    with pytest.raises(ValidationError, match="both its content and its digest"):
        GateRecord(policy="team", passed=True, policy_content=content)
    assert GateRecord(policy="old", passed=True).policy_content is None  # a verdict from before they carried it


def test_alias_records_bound_what_they_name():
    base = {"alias": "production", "version": 2, "set_at": "t", "set_by": "u", "history": [1]}
    assert AliasRecord.model_validate(base).earlier() == (1, None)
    for bad in ({"version": 0}, {"history": [10**9]}, {"event_key": "a/b.json"}, {"alias": "Prod"},
                {"paired_model": "g"}, {"paired_history": ["m:1", "m:2"]}):
        with pytest.raises(ValidationError):
            AliasRecord.model_validate(base | bad)
    assert AliasRecord.model_validate(base | {"event_key": "20261207T000000000000Z-ab12.json"}).event_key


def test_events_name_a_real_model_and_version():
    assert Event(event="promoted", model="m", version=3, actor="a").version == 3
    with pytest.raises(ValidationError):
        Event(event="promoted", model="m", version=-1, actor="a")
    with pytest.raises(ValidationError):
        Event(event="renamed", model="m", actor="a")


def test_a_diff_lists_every_metric_lineage_field_and_file_once():
    left = record(1, {"a": "1", "b": "2", "c": "3"}, {"x": 0.5, "y": 0.1}, datasets={"train": "d@1"})
    right = record(2, {"a": "1", "b": "9", "d": "4"}, {"x": 0.7, "z": 0.2}, datasets={"train": "d@2"})
    diff = diff_versions(left, right)
    assert (diff.a, diff.b) == ("m:1", "m:2")
    assert [(m.metric, m.delta) for m in diff.metrics] == [("x", pytest.approx(0.2)), ("y", None), ("z", None)]
    assert [(c.field, c.a, c.b) for c in diff.lineage] == [("datasets", {"train": "d@1"}, {"train": "d@2"})]
    assert {f.file: f.change for f in diff.files} == {"a": "same", "b": "changed", "c": "removed", "d": "added"}
