"""Flow `continual`: a model updated phase after phase as new dataset versions arrive, and what it remembers.

base model + dataset versions (phases) + a method -> validate every version first -> for each phase: finetune
the previous phase's model on it with the method, then measure R@1 on the test set of every phase learnt so
far (a row of the retention matrix) -> the last phase's model through the candidate pipeline on every phase's
test set, judged with the run's forgetting limit on the matrix's average forgetting -> `<name>`, its version
carrying the matrix, its figures and its heat map.

A base that is itself the end of a continual stream (its lineage holds a retention record) is continued: its
phases' test sets are measured again after each new phase, and the matrix grows by the new rows. That is how
the `continual_on_change` deployment adds a phase each time a watched dataset gets a new version.

Methods: `finetune` (plain), `wiseft` (then the weights mixed with the previous phase's, `wise_ft_mix`), `modx`
(Mod-X: distils the previous phase's model, or `distil_from`), `lora` (adapters on the frozen previous model,
merged after each phase) and `momentum` (ALBEF's momentum distillation: many negatives from a small batch).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from components.config import ContinualMethod, LoraSettings, TrainConfig, ValidationConfig
from components.data.reference import DatasetRef
from components.domains import DomainPreset, domain, run_policy
from components.evaluation.gate import GatePolicy, GateVerdict
from components.evaluation.retention import Retention, mean_r1, plot_retention
from components.evaluation.suites import EvalTarget
from components.models.artifact import ModelArtifact
from components.validation.validated import ValidatedDataset
from flows.steps.candidate import Candidate, Measured, measure, run_candidate_pipeline
from flows.steps.datasets import on_this_machine
from flows.steps.output import inline_png, markdown_table
from flows.steps.platform import Platform
from flows.steps.training import run_folder, train_model, training_job
from flows.validate_data import validate_data
from flows.wise_ft import mix_weights

CONTINUAL_RECORD = "continual"  # the lineage's training record key holding the retention matrix


class ContinualConfig(BaseModel):
    name: str = Field("continual", description="registry name of the last phase's model")
    base_model: str = Field("general@production", description="registry reference the first phase starts from; "
                                                               "the end of a continual stream is continued")
    phases: list[DatasetRef] = Field(min_length=1, description="dataset versions, trained on in this order")
    method: ContinualMethod = "modx"
    method_options: dict[str, str | float | int | bool] = Field(
        default_factory=dict, description="the method's objective options (modx: alpha; momentum: queue_size, "
                                          "momentum, alpha)")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="adapters, for method `lora`")
    wise_ft_mix: float = Field(0.5, ge=0, le=1, description="method `wiseft`: weight of the new phase's weights")
    distil_from: str | None = Field(None, description="method `modx`: a registry reference to distil from in every "
                                                      "phase; default: each phase's starting model")
    domain: str = Field("general", description="the preset whose finetune recipe each phase trains with")
    train: TrainConfig = Field(default_factory=TrainConfig, description="laid over the preset's finetune recipe")
    max_forgetting: float | None = Field(None, ge=0, description="the most average forgetting (R@1) the gate "
                                                                 "tolerates; none: the policy's")
    gate_policy: GatePolicy | str | None = None
    validation: ValidationConfig = Field(default_factory=ValidationConfig)


class ContinualResult(BaseModel):
    model: str
    version: int
    retention: Retention
    measured: Measured
    verdict: GateVerdict


def phase_config(config: ContinualConfig, preset: DomainPreset, start_dir: Path, teacher_dir: Path) -> TrainConfig:
    """One phase's training: the preset's finetune recipe under the user's fields, from `start_dir`, with the
    method's objective or adapters."""
    base = preset.apply(config.train, finetune=True).changed(model={"init_from": str(start_dir)})
    options = dict(config.method_options)
    if config.method == "modx":
        return base.changed(optim={"objectives": [{"name": "modx", "options": {"old": str(teacher_dir), **options}}]})
    if config.method == "momentum":
        return base.changed(optim={"objectives": [{"name": "momentum", "options": options}]})
    if config.method == "lora":
        return base.changed(model={"lora": config.lora.model_dump()})
    return base


def train_phase(config: ContinualConfig, preset: DomainPreset, data: ValidatedDataset, start: Path, *,
                teacher: Path, folder: Path) -> Path:
    """One phase: the method's training from `start` on `data` (then, for `wiseft`, mixed with `start`)."""
    trained = Path(train_model(training_job(phase_config(config, preset, start, teacher), data, folder)))
    if config.method == "wiseft":
        return mix_weights(start, trained, config.wise_ft_mix, folder / "wise-ft")
    return trained


def history_of(base_dir: Path) -> Retention | None:
    """The retention record of a base that ended a continual stream, if it did."""
    record = ModelArtifact.load_light(base_dir).lineage.training.get(CONTINUAL_RECORD)
    return Retention.model_validate(record) if record else None


def earlier_phases(history: Retention | None) -> list[DatasetRef]:
    """The versions a continued stream learnt, to measure again; one that was no version cannot be found again."""
    phases = history.phases if history else []
    unversioned = [phase for phase in phases if "@" not in phase]
    if unversioned:
        raise ValueError(f"the base ends a continual stream whose phase {unversioned[0]!r} was no dataset version, "
                         "so its test set cannot be measured again: version its data (`alignops data add`) and "
                         "start a new stream from a model that ends none")
    return [DatasetRef(ref=phase) for phase in phases]


def phase_target(data: ValidatedDataset, number: int) -> EvalTarget:
    return EvalTarget(name=f"phase{number}_test", dataset_dir=data.dataset.path, split="test",
                      exclude=data.quarantined)


def retention_row(artifact_dir: Path, targets: list[EvalTarget]) -> list[float]:
    measured = measure.fn(str(artifact_dir), targets)
    if measured.refusal:
        raise ValueError(f"{artifact_dir}: {measured.refusal}; the phase's training diverged: lower the learning "
                         "rate or the steps")
    return [mean_r1(measured.metrics, target.name) for target in targets]


@flow(name="continual", log_prints=True)
def continual(config: ContinualConfig) -> ContinualResult:
    logger, platform, preset = get_run_logger(), Platform.from_env(), domain(config.domain)
    registry = platform.registry()
    # Everything resolved and checked before the first phase trains: the policy, the base (and the stream it
    # ends, whose earlier phases are measured again), a fixed teacher, every phase's data.
    policy = run_policy(config.gate_policy, preset)
    if config.max_forgetting is not None:
        policy = policy.model_copy(update={"max_forgetting": config.max_forgetting})
    base = registry.resolve(config.base_model)
    teacher = registry.resolve(config.distil_from) if config.distil_from else None
    phases = [validate_data(on_this_machine(phase), config.validation) for phase in config.phases]
    settings = config.model_dump(mode="json", exclude={"phases", "gate_policy", "name"})
    run = platform.runs / run_folder(f"continual-{base.name}-{base.version}", settings, [p.dataset for p in phases])
    start = base_dir = registry.download(base.name, base.version, run / "base")
    fixed_teacher = registry.download(teacher.name, teacher.version, run / "distil-from") if teacher else None
    history = history_of(start)
    earlier = [validate_data(on_this_machine(version), config.validation) for version in earlier_phases(history)]
    learnt, retention = list(earlier), history
    for number, data in enumerate(phases, start=len(earlier) + 1):
        trained = train_phase(config, preset, data, start, teacher=fixed_teacher or start,
                              folder=run / f"phase-{number}")
        learnt.append(data)
        row = retention_row(trained, [phase_target(d, n) for n, d in enumerate(learnt, start=1)])
        phase = data.dataset.recorded  # by version, never where this machine had it
        retention = (retention or Retention()).with_phase(phase, row, config.method)
        logger.info("phase %d (%s): R@1 %s", number, data.dataset.recorded, " ".join(f"{v:.3f}" for v in row))
        start = trained
    picture = plot_retention(retention, run / "retention.png")
    tests = [phase_target(d, n) for n, d in enumerate(learnt, start=1)]
    # Where the stream started, on every phase's test set: the baseline the gate holds its end to.
    base_metrics = measure(str(base_dir), tests, policy=policy).metrics
    candidate = Candidate(
        name=config.name, artifact_dir=str(start), parent=base.ref,
        training={CONTINUAL_RECORD: retention.model_dump(mode="json"), "method": config.method,
                  **({"distilled_from": teacher.ref} if teacher else {})},
        tags={"continual": config.method, "parent": base.ref}, known_metrics=retention.metrics(),
        reason=f"continual ({config.method}) from {base.ref} over {len(phases)} new phase(s)")
    judged = run_candidate_pipeline(registry, candidate, tests, policy, parent=base_metrics)
    report_retention(judged.record.ref, retention, picture)
    return ContinualResult(model=judged.record.name, version=judged.record.version, retention=retention,
                           measured=judged.measured, verdict=judged.verdict)


def report_retention(subject: str, retention: Retention, picture: Path) -> None:
    figures = retention.metrics()
    create_markdown_artifact(key="retention", description=f"{subject}: retention across phases", markdown=(
        f"# `{subject}`: what {len(retention.phases)} phases of `{retention.method}` remember\n\n"
        + markdown_table([{"figure": k, "value": f"{v:.4f}"} for k, v in figures.items()])
        + "\n\nR@1 (mean of both directions) after each phase, on each phase's test set:\n\n"
        + markdown_table(retention.table()) + "\n\n" + inline_png(picture, "retention heat map")))


class WatchedStream(BaseModel):
    """A continual stream fed by one dataset of the workspace: each new DVC version of it is one more phase."""

    dataset: str = Field(description="workspace path of the DVC-tracked dataset the stream learns from")
    name: str = Field("continual", description="registry name of the stream's models")
    base_model: str = Field("general@production", description="where the stream starts, before it has a model")
    continue_from: str = Field("candidate", description="alias of the stream's model each new phase starts from")
    method: ContinualMethod = "modx"
    domain: str = "general"
    train: TrainConfig = Field(default_factory=TrainConfig)
    max_forgetting: float | None = Field(None, ge=0)
    gate_policy: str | None = Field(None, description="a shipped policy's name or a policy file; default: the "
                                                      "preset's")


@flow(name="continual_on_change", log_prints=True)
def continual_on_change(stream: WatchedStream) -> ContinualResult | None:
    """One more phase when the watched dataset's newest version is one no version of the stream trained on;
    it starts from the stream's model (`continue_from`), or from `base_model` for the first phase."""
    from flows.finetune_on_change import newest_unlearnt
    from flows.steps.datasets import materialise

    logger, platform = get_run_logger(), Platform.from_env()
    if (current := newest_unlearnt(platform, stream.dataset, stream.name)) is None:
        return None
    registry, workspace = platform.registry(), platform.workspace
    known = stream.name in registry.list_models() and registry.get_alias(stream.name, stream.continue_from)
    base = f"{stream.name}@{stream.continue_from}" if known else stream.base_model
    logger.info("%s is new: one more phase of %s from %s", current.ref, stream.name, base)
    return continual(ContinualConfig(name=stream.name, base_model=base, phases=[materialise(stream.dataset, workspace)],
                                     method=stream.method, domain=stream.domain, train=stream.train,
                                     max_forgetting=stream.max_forgetting, gate_policy=stream.gate_policy))
