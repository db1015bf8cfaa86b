"""Flow `finetune`: from a registry version to a gated version adapted to a preset's data.

base model (`general@production`) + dataset (`path@rev`) + preset (a domain, or `general` for a user's own
image-text data) -> validate the data -> train from the base (full, LiT-locked image tower, or last-N
layers), replaying general data against forgetting -> optionally mix base and finetuned weights (WiSE-FT),
choosing the mix on validation data -> the candidate pipeline on the preset's test set and the general
one: the preset's gate plus a forgetting rule against the base -> `<preset>` with the parent in its lineage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from components.config import TrainConfig, ValidationConfig
from components.data.reference import DatasetRef
from components.domains import DomainPreset, domain, run_policy
from components.evaluation.gate import GatePolicy, GateVerdict
from components.evaluation.suites import EvalTarget
from components.validation.validated import ValidatedDataset
from flows.steps.candidate import Candidate, Measured, dataset_target, measure, run_candidate_pipeline
from flows.steps.datasets import on_this_machine
from flows.steps.output import markdown_table
from flows.steps.platform import Platform
from flows.steps.training import run_folder, train_model, training_job
from flows.validate_data import validate_data
from flows.wise_ft import MixChoice, choose_mix


class FinetuneConfig(BaseModel):
    base_model: str = Field("general@production", description="registry reference of the model to adapt")
    domain: str = Field("medical", description="preset: general, medical, remote_sensing or person")
    dataset: DatasetRef = Field(description="the data to adapt to")
    general: DatasetRef | None = Field(None, description="a general dataset: replayed against forgetting, and "
                                                          "measured for the forgetting rule; none: neither")
    general_name: str = Field("synthetic", description="its eval sets are named `<name>_val`, `<name>_test`")
    max_general_drop: float = Field(0.10, ge=0, description="tolerated drop of general mean recall vs the base")
    mode: Literal["full", "lit", "last_n"] = Field("full", description="lit: image tower locked; last_n: only "
                                                                       "the last `unlocked_layers` of each tower")
    unlocked_layers: int = Field(2, ge=0)
    distil_from: str | None = Field(None, description="a registry reference (NAME@ALIAS) Mod-X distils while "
                                                      "finetuning (the `modx` objective instead of the preset's)")
    wise_ft: bool = Field(True, description="mix base and finetuned weights, the mix chosen on validation data")
    replay_fraction: float = Field(0.5, ge=0, lt=1, description="share of general training rows replayed "
                                                                 "while finetuning, against forgetting")
    train: TrainConfig = Field(default_factory=TrainConfig, description="laid over the preset's finetune recipe: "
                                                                        "the fields set here win")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model_name: str | None = Field(None, description="registry name of the result; default: the preset's name")
    gate_policy: GatePolicy | str | None = Field(None, description="a shipped policy's name or a policy file "
                                                                   "(or its content), instead of the preset's")


class FinetuneResult(BaseModel):
    model: str
    version: int
    parent: str
    mix: float
    base_metrics: dict[str, float]
    metrics: dict[str, float]
    measured: Measured
    verdict: GateVerdict
    primary_metric: str


def finetune_train_config(config: FinetuneConfig, preset: DomainPreset, base_dir: Path,
                          teacher_dir: Path | None = None) -> TrainConfig:
    """The preset's finetune recipe under the user's fields, starting from the base, with the mode's locks
    and general data replayed, and Mod-X distilling `teacher_dir` where the run names one."""
    lock = {"full": ({}, {}), "lit": ({"locked": True}, {}),
            "last_n": ({"locked": True, "unlocked_layers": config.unlocked_layers},) * 2}[config.mode]
    replay = {"replay_fraction": config.replay_fraction if config.general else 0.0}
    tuned = preset.apply(config.train, finetune=True).changed(
        model={"init_from": str(base_dir), "lock_image": lock[0], "lock_text": lock[1]}, data=replay)
    if teacher_dir is None:
        return tuned
    return tuned.changed(optim={"objectives": [{"name": "modx", "options": {"old": str(teacher_dir)}}]})


def eval_targets(config: FinetuneConfig, preset: DomainPreset, data: ValidatedDataset,
                 general: ValidatedDataset | None, split: str) -> list[EvalTarget]:
    """The preset's suite on `split` of its data, and general retrieval when a general dataset guards against
    forgetting; the quarantined rows of each left out."""
    targets = [dataset_target(preset, data, split)]
    if general is not None:
        targets.append(EvalTarget(name=f"{config.general_name}_{split}", dataset_dir=general.dataset.path, split=split,
                                  exclude=general.quarantined))
    return targets


def guarding(policy: GatePolicy, config: FinetuneConfig) -> GatePolicy:
    """The run's policy with the forgetting rule its general data adds: general mean recall may not fall more
    than `max_general_drop` below the base's."""
    if config.general is None:
        return policy
    forgetting = {f"{config.general_name}_test/mean_recall": config.max_general_drop}
    return policy.model_copy(update={"forgetting": {**policy.forgetting, **forgetting}})


@flow(name="finetune", log_prints=True)
def finetune(config: FinetuneConfig) -> FinetuneResult:
    platform, preset = Platform.from_env(), domain(config.domain)
    registry = platform.registry()
    # Everything the run needs, resolved and checked before any training: the policy (with the forgetting
    # rule its general data adds), the base, the data and the general data, each validated.
    policy = guarding(run_policy(config.gate_policy, preset), config)
    base = registry.resolve(config.base_model)
    teacher = registry.resolve(config.distil_from) if config.distil_from else None
    validated = validate_data(config.dataset, config.validation)
    general = validate_data(on_this_machine(config.general), config.validation) if config.general else None
    # Named by what it is (the base, the data's versions, the settings): re-running the same finetune resumes
    # its training run, and different data never does.
    settings = config.model_dump(mode="json", exclude={"dataset", "general", "gate_policy", "model_name"})
    run = platform.runs / run_folder(f"{preset.name}-{base.name}-{base.version}", settings,
                                     [validated.dataset, general.dataset if general else None])
    base_dir = registry.download(base.name, base.version, run / "base")
    teacher_dir = registry.download(teacher.name, teacher.version, run / "distil-from") if teacher else None
    tuned_dir = train_model(training_job(finetune_train_config(config, preset, base_dir, teacher_dir), validated, run,
                                         general))
    choice = MixChoice(artifact_dir=tuned_dir, mix=1.0, trials=[])
    if config.wise_ft:
        choice = choose_mix(str(base_dir), tuned_dir, eval_targets(config, preset, validated, general, "val"),
                            primary_metric=preset.primary_metric, max_general_drop=config.max_general_drop,
                            out_dir=str(run / "wise-ft"), policy=policy)
    tests = eval_targets(config, preset, validated, general, "test")
    # The zero-shot baseline, on the same splits, with the policy's backdoor probe: the base's figures show
    # beside the candidate's.
    base_metrics = measure(str(base_dir), tests, policy=policy).metrics
    candidate = Candidate(name=config.model_name or preset.name, artifact_dir=choice.artifact_dir, parent=base.ref,
                          training={"mode": config.mode, "wise_ft_mix": choice.mix,
                                    **({"distilled_from": teacher.ref} if teacher else {})},
                          tags={"domain": preset.name, "parent": base.ref},
                          reason=f"finetuned from {base.ref} on {config.dataset.recorded}")
    judged = run_candidate_pipeline(registry, candidate, tests, policy, parent=base_metrics)
    result = FinetuneResult(model=judged.record.name, version=judged.record.version, parent=base.ref, mix=choice.mix,
                            base_metrics=base_metrics, metrics=judged.measured.metrics, measured=judged.measured,
                            verdict=judged.verdict,
                            primary_metric=f"{tests[0].name}/{preset.primary_metric}")
    if choice.trials:
        key = f"wise-ft-{result.model.replace('_', '-')}"  # artifact keys allow no underscores
        create_markdown_artifact(key=key, description=f"{judged.record.ref}: WiSE-FT mixes", markdown=(
            f"# WiSE-FT mixes of `{judged.record.ref}` (validation; chosen {choice.mix})\n\n"
            + markdown_table([t.model_dump() for t in choice.trials])))
    return result
