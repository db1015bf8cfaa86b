"""A new model trained to share an older version's embedding space, so that galleries the old version embedded
keep answering its queries: the old version resolved once (downloaded, verified), `bct` added to the training
objectives, and the compatibility record the registry keeps when the gate's compatibility rules pass."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from components.config import ObjectiveSpec, TrainConfig
from components.evaluation.gate import GateVerdict
from components.evaluation.metric_names import own_name
from registry.records import CompatibilityRecord
from registry.registry import Registry


class OldSpace(BaseModel):
    """The registry version whose galleries a new model must keep searching."""

    ref: str  # name:version
    space: str  # its embedding space (its own, or one it shares)
    artifact_dir: str


def old_space(registry: Registry, ref: str, old_models: Path) -> OldSpace:
    """`ref` (`name@alias`, `name:version`) resolved once and downloaded (every file's checksum verified) to
    one folder per version, so re-running the same training finds the same path."""
    record = registry.resolve(ref)
    target = old_models / f"{record.name}-v{record.version}"
    if not target.is_dir():
        registry.download(record.name, record.version, target)
    return OldSpace(ref=record.ref, space=record.embedding_space, artifact_dir=str(target))


def with_bct(train: TrainConfig, old: OldSpace, weight: float = 1.0) -> TrainConfig:
    """The training config with the `bct` objective against `old` beside its own objectives."""
    objectives = [o for o in train.optim.objectives if o.name != "bct"]
    objectives.append(ObjectiveSpec(name="bct", weight=weight, options={"old": old.artifact_dir}))
    return train.changed(optim={"objectives": [o.model_dump() for o in objectives]})


def compatibility_record(old: OldSpace, metrics: dict[str, float], old_metrics: dict[str, float],
                         verdict: GateVerdict, projection: str | None = None) -> CompatibilityRecord | None:
    """The evidence that the model's queries search `old`'s galleries (it shares the space, or through
    `projection`, its file mapping queries into it), where the gate judged compatibility and every
    compatibility rule passed; else None (its galleries must be re-embedded)."""
    rules = [r for r in verdict.rules if r.rule in ("compatible", "compatible_own")]
    if not rules or not all(r.passed for r in rules):
        return None
    return CompatibilityRecord(space=old.space, via="projection" if projection else "bct", projection=projection,
                               old_metrics=old_metrics,
                               metrics={m: v for m, v in metrics.items() if own_name(m) != m})
