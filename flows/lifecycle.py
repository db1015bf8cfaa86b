"""Flow `lifecycle`: validate -> train -> the candidate pipeline (measure, judge, register) -> promote ->
package."""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from components.config import TrainConfig, ValidationConfig
from components.data.reference import DatasetRef
from components.domains import domain, run_policy
from components.evaluation.gate import GatePolicy
from components.validation.validated import ValidatedDataset
from core.containment import segment_name
from flows.package import package
from flows.promote import promote
from flows.steps.candidate import Candidate, Judged, dataset_target, run_candidate_pipeline
from flows.steps.compatibility import old_space, with_bct
from flows.steps.platform import Platform
from flows.steps.stages import stage
from flows.steps.training import run_folder, train_model, training_job
from flows.validate_data import validate_data
from infra.pytorchjob import ClusterJob
from serving.options import ServingOptions
from serving.smoke import SmokeResult


class LifecycleConfig(BaseModel):
    model_name: str = "general"
    dataset: DatasetRef
    preset: str = Field("general", description="its augmentation, metric suite and gate policy")
    run_name: str | None = Field(None, description="the training run's folder under runs/ (re-using one resumes "
                                                  "it); default: named by the data and the config")
    eval_split: Literal["train", "val", "test"] = Field("test", description="the dataset's split that is measured "
                                                                            "and judged")
    gate_policy: GatePolicy | str | None = Field(None, description="a shipped policy's name or a policy file "
                                                                   "(or its content), instead of the preset's")
    train: TrainConfig = Field(default_factory=TrainConfig)
    compatible_with: str | None = Field(None, description="a registry version (`name@alias`, `name:version`) whose "
                                                         "galleries the new model must keep searching: trained "
                                                         "with `bct` against it, gated on cross-model recall")
    cluster: ClusterJob | None = Field(None, description="where training runs when `train.scale.launcher` is "
                                                         "kubernetes")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    promote_to: str | None = Field("production", description="the alias a passing model moves to; none: it stays "
                                                             "a candidate (`alignops train`)")
    package: bool = True
    serving: ServingOptions = Field(default_factory=ServingOptions, description="the bento's batching and limits")


class LifecycleResult(BaseModel):
    validated: ValidatedDataset
    judged: Judged
    promoted_to: str | None
    bento_tag: str | None = None
    smoke: SmokeResult | None = None

    @property
    def model(self) -> str:
        return self.judged.record.name

    @property
    def version(self) -> int:
        return self.judged.record.version


def lifecycle_run(config: LifecycleConfig, train: TrainConfig, data: ValidatedDataset) -> str:
    """The run's one folder under runs/: the name given, else named by the model, the config and the data."""
    if config.run_name is not None:
        return segment_name(config.run_name, "run name")
    return run_folder(config.model_name, train.model_dump(mode="json"), [data.dataset])


@flow(name="lifecycle", log_prints=True)
def lifecycle(config: LifecycleConfig) -> LifecycleResult:
    platform, preset = Platform.from_env(), domain(config.preset)
    registry = platform.registry()
    # Everything the run needs, resolved before any work: the policy, the older space, the data.
    policy = run_policy(config.gate_policy, preset)
    old = old_space(registry, config.compatible_with, platform.old_models) if config.compatible_with else None
    with stage("validate"):
        validated = validate_data(config.dataset, config.validation)
    train = with_bct(preset.apply(config.train), old) if old is not None else preset.apply(config.train)
    run_dir = platform.runs / lifecycle_run(config, train, validated)
    with stage("train"):
        artifact_dir = train_model(training_job(train, validated, run_dir), config.cluster)
    target = dataset_target(preset, validated, config.eval_split)
    with stage("measure, judge, register"):
        judged = run_candidate_pipeline(registry, Candidate(name=config.model_name, artifact_dir=artifact_dir,
                                                            reason="registered by the lifecycle flow", old=old),
                                        [target], policy)
    result = LifecycleResult(validated=validated, judged=judged, promoted_to=None)
    if not judged.verdict.passed:
        print(f"{judged.record.ref} failed its gate; {config.promote_to or 'candidate'} stays where it was")
        return result
    if config.promote_to is None:
        return result
    holder = registry.get_alias(config.model_name, config.promote_to)
    if holder is not None and holder.version == judged.record.version:  # a re-run of a run already promoted
        print(f"{judged.record.ref} already holds {config.promote_to!r}: the run registered it before")
    else:
        with stage("promote"):
            promote(config.model_name, judged.record.version, config.promote_to,
                    reason="gate passed in the lifecycle flow", package_on_move=not config.package)
    result.promoted_to = config.promote_to
    if config.package:
        result.bento_tag, result.smoke = package(judged.record.ref, validated.dataset, config.eval_split,
                                                 config.serving)
    return result
