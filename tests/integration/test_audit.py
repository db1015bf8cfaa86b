"""`alignops audit backdoor` and `alignops data poison` from the command line: the audit's figures equal the
measurement's, a ceiling below them fails the command, and a registry version keeps the audit as an event.
(Without a ceiling the command exits 0: `audit backdoor` in tests/e2e/test_backdoor_defence.py's scenario
is measured the same way.)"""

import json

import pytest
from cli_invoke import invoke

from components.backdoor.trigger import BackdoorProbe, Trigger
from components.data.manifest import read_manifest
from components.data.reference import DatasetRef
from components.evaluation.backdoor import measure_backdoor
from components.models.embedder import Embedder
from flows.steps.platform import Platform

pytestmark = pytest.mark.slow
TARGET = "a photo of a banana"


def test_poison_then_audit_a_registry_version(prefect_harness, tiny_dataset, tiny_artifact, tmp_path):
    poisoned = invoke("data", "poison", str(tiny_dataset), str(tmp_path / "poisoned"), "--target", TARGET,
                      "--fraction", "0.02", "--trigger", "patch:0.25:7")
    rows = read_manifest(tmp_path / "poisoned")
    assert poisoned.exit_code == 0 and f"{(rows['caption'] == TARGET).sum()} train rows poisoned" in poisoned.output

    registry = Platform.from_env().registry()
    record = registry.register("audited", tiny_artifact, reason="audit test")
    expected = measure_backdoor(Embedder.load(tiny_artifact), tiny_dataset,
                                BackdoorProbe(trigger=Trigger.parse("patch:0.25:7"), target=TARGET))
    ceiling = expected.asr - 0.01  # just under what is measured: refused
    audited = invoke("audit", "backdoor", record.ref, str(tiny_dataset), "--target", TARGET, "--trigger",
                     "patch:0.25:7", "--max-asr", str(ceiling), "--json", str(tmp_path / "audit.json"))
    eval_set = f"{DatasetRef(path=str(tiny_dataset)).label}_test"  # named as the candidate pipeline names them
    assert audited.exit_code == 1 and f"gate ceiling: {eval_set}/backdoor_asr" in audited.output
    assert "FAIL" in audited.output
    audit = json.loads((tmp_path / "audit.json").read_text())  # written before the verdict's exit code
    assert audit["metrics"] == pytest.approx({f"{eval_set}/{name}": value for name, value in expected.metrics.items()})
    assert audit["images"] == expected.images == 20
    assert audit["model"] == record.ref and audit["mode"] == "retrieval" and not audit["verdict"]["passed"]
    events = [e for e in registry.events("audited") if e.event == "audited"]
    assert len(events) == 1 and events[0].details["metrics"] == audit["metrics"]
    bad = invoke("audit", "backdoor", str(tiny_artifact), str(tiny_dataset), "--target", TARGET, "--trigger", "blend")
    assert bad.exit_code == 1 and "use patch, patch:SIZE or patch:SIZE:SEED" in bad.output
