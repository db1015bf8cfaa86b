"""The one candidate pipeline every flow that makes a model ends with: measure (the preset's suites) ->
judge (the gate, a pure function) -> register as a candidate. `candidate` moves only on a passing gate,
and the move is announced as the `alignops.alias.moved` event automations act on."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel, Field

from components.compat.cross_model import against_old
from components.compat.projection import Projection, space_file
from components.domains import DOMAINS, DomainPreset
from components.evaluation.evidence import Interval, NonFiniteEmbeddings
from components.evaluation.examples import retrieval_grid
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate, refused
from components.evaluation.suites import EvalTarget
from components.models.artifact import LINEAGE_FILE, WEIGHTS_FILE, ModelArtifact
from components.models.embedder import Embedder
from components.validation.validated import ValidatedDataset
from core.digest import canonical_digest, sha256_file
from flows.steps.compatibility import OldSpace, compatibility_record
from flows.steps.output import inline_png, markdown_table
from registry.records import GateRecord, LineageRecord, VersionRecord
from registry.registry import Registry

ALIAS_MOVED = "alignops.alias.moved"
PACKAGE_ON_MOVE = "alignops.package-on-move"  # resource label the package automation matches
CANDIDATE = "candidate"


class Measured(BaseModel):
    """The figures of one artifact on some eval sets; `refusal` says why there are none (non-finite)."""

    metrics: dict[str, float] = Field(default_factory=dict)
    chance: dict[str, float] = Field(default_factory=dict)
    intervals: dict[str, Interval] = Field(default_factory=dict, description="95% intervals and query counts")
    sizes: dict[str, tuple[int, int]] = Field(default_factory=dict, description="eval set -> (images, captions)")
    pictures: dict[str, str] = Field(default_factory=dict, description="eval set -> retrieval examples (PNG)")
    old_metrics: dict[str, float] = Field(default_factory=dict, description="the old model's own figures on the "
                                                                            "same sets, where compatibility is "
                                                                            "measured (`xm/…` in `metrics`)")
    refusal: str | None = None


class Candidate(BaseModel):
    """A trained artifact on its way into the registry, with what its lineage should add."""

    name: str
    artifact_dir: str
    parent: str | None = Field(None, description="`name:version` it was finetuned from")
    training: dict = Field(default_factory=dict, description="facts added to the lineage's training record")
    tags: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    old: OldSpace | None = Field(None, description="the older version whose galleries it must keep searching")
    known_metrics: dict[str, float] = Field(default_factory=dict, description="figures the run measured itself "
                                                                              "(a continual run's forgetting), "
                                                                              "judged and recorded beside the "
                                                                              "pipeline's")


class Judged(BaseModel):
    measured: Measured
    verdict: GateVerdict
    record: VersionRecord


@task
def measure(artifact_dir: str, targets: list[EvalTarget], pictures_dir: str | None = None,
            old_space: OldSpace | None = None, *, policy: GatePolicy | None = None) -> Measured:
    """Every target's suite on the artifact, with `policy`'s backdoor probe where it has one (the one place a
    probe joins a measurement, so whatever judges by the policy finds its figures); a non-finite embedding
    anywhere is a refusal, not a figure. With an old model, also its own retrieval figures and the artifact's
    queries against its galleries (`xm/…`), through the artifact's projection into the old space where it
    carries one."""
    targets = probed(targets, policy) if policy else targets
    embedder, measured = Embedder.load(Path(artifact_dir)), Measured()
    old = Embedder.load(Path(old_space.artifact_dir)) if old_space else None
    projection = carried_projection(artifact_dir, old_space)
    for target in targets:
        try:
            result = target.measure(embedder)
        except NonFiniteEmbeddings as error:
            return Measured(refusal=str(error))
        if old is not None:
            cross, old_own = against_old(target.name, result.encoded, target.encode(old), projection)
            measured.metrics |= cross
            measured.old_metrics |= old_own
        measured.metrics |= result.metrics
        measured.chance |= result.chance
        measured.intervals |= result.intervals
        measured.sizes[target.name] = (len(result.encoded.image_paths), len(result.encoded.captions))
        if pictures_dir:
            picture = Path(pictures_dir) / f"{target.name}-examples.png"
            measured.pictures[target.name] = str(retrieval_grid(result.encoded, Path(target.dataset_dir), picture))
    return measured


def projection_file(artifact_dir: str | Path, old: OldSpace | None) -> str | None:
    """The artifact's file mapping its queries into `old`'s space, where it carries one."""
    if old is None or not (Path(artifact_dir) / space_file(old.space)).is_file():
        return None
    return space_file(old.space)


def carried_projection(artifact_dir: str, old: OldSpace | None) -> Projection | None:
    return Projection.load(Path(artifact_dir), old.space) if projection_file(artifact_dir, old) else None


def dataset_target(preset: DomainPreset, data: ValidatedDataset, split: str, suite: str | None = None) -> EvalTarget:
    """The preset's suite (or `suite`) on `split` of validated data, quarantined rows left out. The eval set is
    named after a domain (its shipped policy names its metrics so), or for general data after the dataset,
    so the metrics of a team's own data are never filed under another set's name."""
    owner = preset.name if preset.name in DOMAINS else data.dataset.label
    return EvalTarget(name=f"{owner}_{split}", dataset_dir=data.dataset.path, split=split, suite=suite or preset.suite,
                      prompt_domain=preset.prompt_domain, exclude=data.quarantined)


def probed(targets: list[EvalTarget], policy: GatePolicy) -> list[EvalTarget]:
    """The targets with the policy's backdoor probe, where it has one: what its ceilings judge gets measured."""
    if policy.backdoor is None:
        return targets
    return [target.model_copy(update={"backdoor": policy.backdoor}) for target in targets]


def judge(policy: GatePolicy, measured: Measured, incumbent: dict[str, float] | None = None,
          parent: dict[str, float] | None = None) -> GateVerdict:
    if measured.refusal is not None:
        return refused(policy, "embeddings", measured.refusal)
    return evaluate_gate(policy, measured.metrics, incumbent, parent=parent, intervals=measured.intervals,
                         chance=measured.chance, old=measured.old_metrics or None)


def incumbent_metrics(registry: Registry, name: str, alias: str = "production") -> dict[str, float] | None:
    """The metrics of the version holding `alias`: what a candidate must not regress against."""
    holder = registry.get_alias(name, alias)
    return registry.get_version(name, holder.version).metrics if holder else None


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def register_candidate(registry: Registry, candidate: Candidate, measured: Measured,
                       verdict: GateVerdict) -> VersionRecord:
    """Write the evaluation into the artifact's lineage, register it, and move `candidate` on a pass. A retry
    (of this task, or of the run) returns the version the run already registered."""
    artifact_dir = Path(candidate.artifact_dir)
    key = run_key(candidate, measured, verdict)
    lineage = ModelArtifact.load_light(artifact_dir).lineage
    lineage = lineage.model_copy(update={
        "metrics": measured.metrics,
        "metric_intervals": {metric: interval.model_dump() for metric, interval in measured.intervals.items()},
        "parent_model": candidate.parent or lineage.parent_model,
        "training": {**lineage.training, **candidate.training}})
    (artifact_dir / LINEAGE_FILE).write_text(lineage.model_dump_json(indent=2))  # the artifact carries its evidence
    old = candidate.old
    compatible = old and compatibility_record(old, measured.metrics, measured.old_metrics, verdict,
                                              projection_file(artifact_dir, old))
    record = registry.register(
        candidate.name, artifact_dir, metrics=measured.metrics, reason=candidate.reason, tags=candidate.tags,
        gate=GateRecord.model_validate(verdict.model_dump(mode="json")),
        lineage=LineageRecord.model_validate(lineage.model_dump(mode="json")),
        space=compatible.space if compatible and compatible.via == "bct" else None,
        compatibility=[compatible] if compatible else [], run_key=key)
    moved = "alias `candidate` -> " + str(record.version) if verdict.passed else "alias `candidate` stays where it was"
    create_markdown_artifact(key="registry-change", description=f"{record.ref} registered", markdown=(
        f"# Registered `{record.ref}`\n\nGate `{verdict.policy}`: {'passed' if verdict.passed else 'FAILED'}; "
        f"{moved}.\n\nFiles: {len(record.files)}; datasets: {record.lineage.datasets}"))
    logger = get_run_logger()
    previous = registry.get_alias(candidate.name, CANDIDATE)
    if verdict.passed and (previous is None or previous.version != record.version):  # a retry moves nothing twice
        registry.set_alias(candidate.name, CANDIDATE, record.version, reason=f"gate {verdict.policy} passed")
        announce_alias_move(registry, record, CANDIDATE, previous.version if previous else None,
                            parent=candidate.parent)
        logger.info("%s passed gate %s; alias candidate moved to it", record.ref, verdict.policy)
    elif not verdict.passed:
        logger.warning("%s FAILED gate %s on %s (the verdict, rule by rule, is in its record)", record.ref,
                       verdict.policy, ", ".join(sorted({r.metric for r in verdict.failures})))
    return record


def run_key(candidate: Candidate, measured: Measured, verdict: GateVerdict) -> str:
    """What makes a registration the same one again: the model's name, its weights, its figures and the policy
    that judged them. A retry has all four; another run differs in at least its weights or figures."""
    weights = sha256_file(Path(candidate.artifact_dir) / WEIGHTS_FILE)
    return canonical_digest([candidate.name, weights, measured.metrics, verdict.policy_digest]).removeprefix("sha256:")


def announce_alias_move(registry: Registry, record: VersionRecord, alias: str, previous: int | None,
                        package_on_move: bool = True, **facts: object) -> None:
    """The Prefect event automations act on: the package automation builds whatever `production` now points
    at, unless the mover packages it itself (`package_on_move` off)."""
    emit_event(event=ALIAS_MOVED, resource={"prefect.resource.id": f"alignops.model.{record.name}",
                                            "alignops.alias": alias, PACKAGE_ON_MOVE: str(package_on_move).lower()},
               payload={"model": record.name, "version": record.version, "alias": alias, "previous": previous,
                        "registry": registry.store.url, **facts})


def run_candidate_pipeline(registry: Registry, candidate: Candidate, targets: list[EvalTarget],
                           policy: GatePolicy, parent: dict[str, float] | None = None) -> Judged:
    """Measure (with the policy's backdoor probe) -> judge (against `production` and, for a finetune, the
    parent's figures) -> register."""
    pictures = Path(candidate.artifact_dir).parent / "eval"
    pictures.mkdir(parents=True, exist_ok=True)
    measured = measure(candidate.artifact_dir, targets, str(pictures), candidate.old, policy=policy)
    if measured.refusal is None:
        measured = measured.model_copy(update={"metrics": measured.metrics | candidate.known_metrics})
    verdict = judge(policy, measured, incumbent_metrics(registry, candidate.name), parent)
    record = register_candidate(registry, candidate, measured, verdict)
    report_judgement(record.ref, measured, verdict, parent)
    return Judged(measured=measured, verdict=verdict, record=record)


def report_judgement(subject: str, measured: Measured, verdict: GateVerdict,
                     baseline: dict[str, float] | None = None) -> None:
    """One Prefect artifact: the figures with their intervals (and the change against `baseline`), the
    gate's rules, the retrieval examples."""
    def interval(metric: str) -> str:
        found = measured.intervals.get(metric)
        return f"[{found.low:.3f}, {found.high:.3f}] (n={found.n})" if found else "-"

    rows = [{"metric": m, "value": f"{v:.4f}", "95% interval": interval(m),
             "chance": f"{measured.chance[m]:.4f}" if m in measured.chance else "-"}
            | ({"base": f"{baseline[m]:.4f}" if m in baseline else "-"} if baseline is not None else {})
            for m, v in measured.metrics.items()]
    rules = [{"rule": r.rule, "result": "pass" if r.passed else "FAIL", "reason": r.reason} for r in verdict.rules]
    sizes = "; ".join(f"{name}: {images} images, {captions} captions"
                      for name, (images, captions) in measured.sizes.items())
    pictures = "".join(f"\n\n## Retrieval examples: {name}\n\n{inline_png(Path(path), 'retrieval examples')}"
                       for name, path in measured.pictures.items())
    create_markdown_artifact(key="evaluation", description=f"{subject}: gate {verdict.policy}", markdown=(
        f"# `{subject}`: gate `{verdict.policy}` {'passed' if verdict.passed else 'FAILED'}\n\n{sizes}\n\n"
        f"{markdown_table(rows)}\n\n## Gate\n\n{markdown_table(rules)}{pictures}"))
