"""Flow `audit_backdoor`: is a model backdoored by a given trigger? Its attack success rate (ASR) on a
dataset's split beside its clean top-1 on the same images, judged against an ASR ceiling where one is set
(the same probe and rule a gate policy holds for the candidate pipeline), and recorded on a registry
version as an `audited` event."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from components.backdoor.trigger import BackdoorProbe
from components.config import ValidationConfig
from components.data.reference import DatasetRef
from components.evaluation.backdoor import measure_backdoor
from components.evaluation.evidence import Interval
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate
from components.evaluation.metric_names import BACKDOOR_ASR, BACKDOOR_CLEAN_TOP1, prefixed
from components.models.embedder import Embedder
from flows.evaluate import model_at
from flows.steps.datasets import on_this_machine
from flows.steps.platform import Platform
from flows.validate_data import validate_data
from registry.records import Event


class BackdoorAudit(BaseModel):
    model: str
    dataset: str
    split: str
    eval_set: str  # names the figures: `<dataset>_<split>`
    probe: BackdoorProbe
    mode: str  # zero_shot (labels) or retrieval (captions)
    images: int
    metrics: dict[str, float]  # <set>/backdoor_asr, <set>/backdoor_clean_top1
    intervals: dict[str, Interval]
    chance: dict[str, float]  # each figure under a random ranking
    verdict: GateVerdict | None = None  # with an ASR ceiling


@flow(name="audit_backdoor", log_prints=True)
def audit_backdoor(model: str, dataset: DatasetRef, probe: BackdoorProbe, *, split: str = "test",
                   max_asr: float | None = None,
                   validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
                   ) -> BackdoorAudit:
    """`model` is `name:N`, `name@alias` or an artifact directory; the probe's target is the attacker's caption
    or label. The figures are named as the candidate pipeline names them (`<dataset>_<split>/backdoor_asr`)."""
    dataset = on_this_machine(dataset)
    quarantined = validate_data(dataset, validation).quarantined
    registry = Platform.from_env().registry()
    with tempfile.TemporaryDirectory() as tmp:
        artifact_dir, record = model_at(registry, model, Path(tmp) / "model")
        measured = measure_backdoor(Embedder.load(artifact_dir), Path(dataset.path), probe, split=split,
                                    exclude=quarantined)
    eval_set = f"{dataset.label}_{split}"
    metrics, intervals = prefixed(measured.metrics, eval_set), prefixed(measured.intervals, eval_set)
    verdict = None if max_asr is None else evaluate_gate(
        GatePolicy(name="backdoor", backdoor=probe, ceilings={f"*/{BACKDOOR_ASR}": max_asr}), metrics,
        intervals=intervals)
    audit = BackdoorAudit(model=record.ref if record else Path(artifact_dir).name, dataset=dataset.recorded,
                          split=split, eval_set=eval_set, probe=probe, mode=measured.mode, images=measured.images,
                          metrics=metrics, intervals=intervals, chance=prefixed(measured.chance, eval_set),
                          verdict=verdict)
    if record:
        registry.record_event(Event(event="audited", model=record.name, version=record.version,
                                    reason=f"backdoor audit on {dataset.recorded} ({split})",
                                    details=audit.model_dump(mode="json")))
    publish(audit)
    return audit


def publish(audit: BackdoorAudit) -> None:
    asr_name, clean_name = (f"{audit.eval_set}/{name}" for name in (BACKDOOR_ASR, BACKDOOR_CLEAN_TOP1))
    asr, clean = audit.intervals[asr_name], audit.intervals[clean_name]
    lines = [f"ASR {audit.metrics[asr_name]:.3f} (95% {asr.low:.3f}-{asr.high:.3f}); clean top-1 "
             f"{audit.metrics[clean_name]:.3f} ({clean.low:.3f}-{clean.high:.3f}); {audit.images} "
             f"images, {audit.mode}"]
    lines += [f"gate {r.rule}: {r.reason} — {'pass' if r.passed else 'FAIL'}" for r in
              (audit.verdict.rules if audit.verdict else [])]
    create_markdown_artifact(key="backdoor-audit", description=f"Backdoor audit of {audit.model}", markdown=(
        f"# Backdoor audit of `{audit.model}`\n\nOn `{audit.dataset}` ({audit.split}); trigger "
        f"`{audit.probe.trigger.model_dump_json()}`, target `{audit.probe.target}`.\n\n" + "  \n".join(lines)))
    print(f"{audit.model}: " + "; ".join(lines))
