"""Flow `lifecycle`: validate -> pretrain -> evaluate + gate -> register -> promote -> package."""

from __future__ import annotations

import re

from prefect import flow
from pydantic import BaseModel, Field

from components.config import TrainConfig, ValidationConfig
from components.models.artifact import config_hash
from components.validation.report import ValidationReport
from flows.evaluate import Evaluation, evaluate
from flows.package import package
from flows.pretrain import pretrain
from flows.promote import promote, register_version
from flows.settings import POLICIES, Platform
from flows.validate_data import validate_data
from infra.pytorchjob import ClusterJob
from serving.options import ServingOptions
from serving.smoke import SmokeResult


class LifecycleConfig(BaseModel):
    model_name: str = "general"
    dataset_dir: str
    dataset_version: str = Field(description="the dataset's reference in the DVC workspace, `path@rev`")
    dataset_hash: str = Field("", description="DVC hash of the dataset directory")
    eval_set: str = "synthetic_test"
    eval_split: str = "test"
    gate_policy: str = str(POLICIES / "synthetic.yaml")
    train: TrainConfig = Field(default_factory=TrainConfig)
    cluster: ClusterJob | None = Field(None, description="where training runs when `train.launcher` is kubernetes")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    promote_to: str = "production"
    package: bool = True
    serving: ServingOptions = Field(default_factory=ServingOptions, description="the bento's batching and limits")


class LifecycleResult(BaseModel):
    dataset_version: str
    validation: ValidationReport
    evaluation: Evaluation
    model: str
    version: int
    promoted_to: str | None
    bento_tag: str | None = None
    smoke: SmokeResult | None = None


@flow(name="lifecycle", log_prints=True)
def lifecycle(config: LifecycleConfig) -> LifecycleResult:
    registry = Platform.from_env().registry()
    report = validate_data(config.dataset_dir, config.dataset_version, config.dataset_hash, config.validation)
    quarantined = sorted(report.quarantined_ids)
    # The run is named by its inputs: re-running the same data and config resumes (or reuses) it.
    version = re.sub(r"[^A-Za-z0-9._-]", "-", config.dataset_version)[-80:]  # one folder name, bounded
    run_name = f"{config.model_name}-{config_hash(config.train)}-{version}"
    artifact_dir = pretrain(config.dataset_dir, config.dataset_version, config.dataset_hash, config.train, run_name,
                            quarantined, config.cluster)
    incumbent = registry.get_alias(config.model_name, config.promote_to)
    incumbent_metrics = registry.get_version(config.model_name, incumbent.version).metrics if incumbent else None
    evaluation = evaluate(artifact_dir, config.dataset_dir, config.eval_set, config.gate_policy, config.eval_split,
                          incumbent_metrics, quarantined)
    record = register_version(config.model_name, artifact_dir, evaluation.metrics, evaluation.verdict,
                              evaluation.intervals)
    result = LifecycleResult(dataset_version=config.dataset_version, validation=report, evaluation=evaluation,
                             model=config.model_name, version=record.version, promoted_to=None)
    if not evaluation.verdict.passed:
        print(f"{config.model_name}:{record.version} failed its gate; {config.promote_to} stays where it was")
        return result
    promote(config.model_name, record.version, config.promote_to, reason="gate passed in the lifecycle flow",
            package_on_move=not config.package)
    result.promoted_to = config.promote_to
    if config.package:
        result.bento_tag, result.smoke = package(f"{config.model_name}:{record.version}", config.dataset_dir,
                                                 config.eval_split, config.serving)
    return result

