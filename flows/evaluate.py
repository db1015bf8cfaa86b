"""Flow `evaluate`: any model (a registry version or an artifact directory) measured on any dataset's split
with its preset's suite and judged by a gate: against chance, the version holding `production`, and the
model it was finetuned from (measured on the same split). A registry version gets the figures and the
verdict recorded on it (an `evaluated` event); nothing is registered."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from components.config import ValidationConfig
from components.data.reference import DatasetRef
from components.domains import domain, run_policy
from components.evaluation.gate import GatePolicy, GateVerdict
from components.evaluation.suites import SUITES
from flows.steps.candidate import Measured, dataset_target, incumbent_metrics, judge, measure, report_judgement
from flows.steps.platform import Platform
from flows.validate_data import validate_data
from registry.names import InvalidName, parse_ref
from registry.records import Event, VersionRecord
from registry.registry import Registry


class Evaluation(BaseModel):
    model: str  # `name:N`, or the artifact directory measured
    dataset: str  # the dataset's reference
    split: str
    measured: Measured
    verdict: GateVerdict
    parent: str | None = None  # the model it was finetuned from, measured on the same split
    parent_metrics: dict[str, float] | None = None


@flow(name="evaluate", log_prints=True)
def evaluate(model: str, dataset: DatasetRef, split: str = "test", *, preset: str = "general",
             suite: str | None = None, gate_policy: GatePolicy | str | None = None,
             validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
             ) -> Evaluation:
    """`model` is `name:N`, `name@alias` or an artifact directory; `dataset` is validated first (cached per
    version) and its quarantined rows left out; `suite` overrides the preset's (retrieval, zero_shot,
    person); `gate_policy` is a shipped policy's name or a policy file. A model whose embeddings are not
    finite gets a failing verdict naming the rows."""
    platform, chosen = Platform.from_env(), domain(preset)
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown metric suite {suite!r}; choose from {SUITES}")
    policy = run_policy(gate_policy, chosen)  # before any work: a misspelt policy or model costs no measurement
    registry = platform.registry()
    record = model_record(registry, model)
    target = dataset_target(chosen, validate_data(dataset, validation), split, suite)
    with tempfile.TemporaryDirectory() as tmp:
        artifact_dir = model_dir(registry, model, record, Path(tmp) / "model")
        pictures = platform.evaluations / (record.ref.replace(":", "-") if record else Path(artifact_dir).name)
        pictures.mkdir(parents=True, exist_ok=True)
        measured = measure(str(artifact_dir), [target], str(pictures), policy=policy)
        parent = record.lineage.parent_model if record and record.lineage else None
        parent_metrics = measured_parent(registry, parent, target, policy, Path(tmp) / "parent")
    incumbent = incumbent_metrics(registry, record.name) if record else None
    verdict = judge(policy, measured, incumbent, parent_metrics)
    evaluation = Evaluation(model=record.ref if record else str(artifact_dir), dataset=dataset.recorded, split=split,
                            measured=measured, verdict=verdict, parent=parent, parent_metrics=parent_metrics)
    if record:
        registry.record_event(Event(event="evaluated", model=record.name, version=record.version,
                                    reason=f"measured on {dataset.recorded} ({split})",
                                    details=evaluation.model_dump(mode="json", exclude={"measured": {"pictures"}})))
    report_judgement(evaluation.model, measured, verdict, parent_metrics)
    return evaluation


def model_record(registry: Registry, model: str) -> VersionRecord | None:
    """`model` resolved once, where a run starts: None for an artifact directory, else its registry version
    (a reference that is neither fails here, naming the problem)."""
    if Path(model).is_dir():
        return None
    parse_ref(model)
    return registry.resolve(model)


def model_dir(registry: Registry, model: str, record: VersionRecord | None, download_to: Path) -> Path:
    """The resolved model's artifact directory: the directory itself, or its version downloaded."""
    return Path(model) if record is None else registry.download(record.name, record.version, download_to)


def model_at(registry: Registry, model: str, download_to: Path) -> tuple[Path, VersionRecord | None]:
    """An artifact directory as it is, or a registry reference resolved once and downloaded."""
    record = model_record(registry, model)
    return model_dir(registry, model, record, download_to), record


def measured_parent(registry: Registry, parent: str | None, target, policy: GatePolicy,
                    download_to: Path) -> dict[str, float] | None:
    """The parent's figures on the same split: the baseline a finetuned model is judged against. A parent
    outside the registry (an imported checkpoint names its source) has none."""
    try:
        parse_ref(parent or "")
    except InvalidName:
        return None
    record = registry.resolve(parent)
    artifact = registry.download(record.name, record.version, download_to)
    return measure(str(artifact), [target], policy=policy).metrics
