"""Flow `finetune`: from a registry version to a gated domain version.

base model (`general@production`) + domain dataset (`path@rev`) + domain preset -> validate the data ->
train from the base (full, LiT-locked image tower, or last-N layers) -> optionally mix base and finetuned
weights (WiSE-FT), choosing the mix on validation data -> evaluate on the domain test set and the general
eval set -> the domain gate plus a forgetting rule -> register `<domain>` with the parent in its lineage.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field
from safetensors.torch import load_file, save_file

from components.config import TowerLock, TrainConfig, ValidationConfig
from components.domains import domain
from components.evaluation.evidence import Interval, NonFiniteEmbeddings
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate, refused
from components.evaluation.suites import measure
from components.models.artifact import WEIGHTS_FILE, ModelArtifact, config_hash
from components.models.embedder import Embedder
from flows.pretrain import train_model
from flows.promote import announce_alias_move
from flows.report import markdown_table
from flows.settings import Platform
from flows.validate_data import validate_data

WISE_FT_MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)


class FinetuneConfig(BaseModel):
    base_model: str = Field("general@production", description="registry reference of the model to adapt")
    domain: str = Field("medical", description="domain preset: medical, remote_sensing or person")
    dataset_dir: str
    dataset_version: str = Field(description="the domain dataset's `path@rev`")
    dataset_hash: str = ""
    general_dataset_dir: str = Field(description="the general eval dataset, for the forgetting rule")
    general_name: str = Field("synthetic", description="its eval sets are named `<name>_val`, `<name>_test`")
    max_general_drop: float = Field(0.10, ge=0, description="tolerated drop of general mean recall vs the base")
    mode: Literal["full", "lit", "last_n"] = Field("full", description="lit: image tower locked; last_n: only "
                                                                       "the last `unlocked_layers` of each tower")
    unlocked_layers: int = Field(2, ge=0)
    wise_ft: bool = Field(True, description="mix base and finetuned weights, the mix chosen on validation data")
    replay_fraction: float = Field(0.5, ge=0, lt=1, description="share of general training rows replayed "
                                                                 "while finetuning, against forgetting")
    train: TrainConfig | None = Field(None, description="overrides; default: the preset's steps, rate, objectives")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    model_name: str | None = Field(None, description="registry name of the result; default: the domain's name")


class FinetuneResult(BaseModel):
    model: str
    version: int
    parent: str
    mix: float
    base_metrics: dict[str, float]
    metrics: dict[str, float]
    verdict: GateVerdict
    primary_metric: str


def finetune_train_config(config: FinetuneConfig, base_dir: Path) -> TrainConfig:
    preset = domain(config.domain)
    defaults = TrainConfig(max_steps=preset.finetune_steps, learning_rate=preset.learning_rate, warmup_steps=10,
                           batch_size=64, objectives=list(preset.objectives), checkpoint_every_n_steps=50,
                           val_every_n_steps=50)
    train = config.train or defaults
    locks = {"full": (TowerLock(), TowerLock()),
             "lit": (TowerLock(locked=True), TowerLock()),
             "last_n": (TowerLock(locked=True, unlocked_layers=config.unlocked_layers),
                        TowerLock(locked=True, unlocked_layers=config.unlocked_layers))}[config.mode]
    return train.model_copy(update={"init_from": str(base_dir), "domain": config.domain, "lock_image": locks[0],
                                    "lock_text": locks[1], "replay_dataset": config.general_dataset_dir,
                                    "replay_fraction": config.replay_fraction})


def mix_weights(base_dir: Path, tuned_dir: Path, mix: float, out_dir: Path) -> Path:
    """WiSE-FT: (1 - mix) * base + mix * finetuned, tensor by tensor; the rest of the artifact is the tuned one."""
    shutil.copytree(tuned_dir, out_dir, dirs_exist_ok=True)
    base, tuned = load_file(str(base_dir / WEIGHTS_FILE)), load_file(str(tuned_dir / WEIGHTS_FILE))
    mixed = {k: tuned[k] if mix == 1 else torch.lerp(base[k], tuned[k], mix) for k in tuned}  # exact at 0 and 1
    save_file(mixed, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    return out_dir


@task
def measure_sets(artifact_dir: str, config: FinetuneConfig, split: str, quarantined: list[str],
                 ) -> tuple[dict[str, float], dict[str, Interval]]:
    """Domain metrics on `split` of the domain dataset, and general retrieval on the general set's split,
    with their 95% intervals."""
    preset, embedder = domain(config.domain), Embedder.load(Path(artifact_dir))
    domain_set, general_set = f"{config.domain}_{split}", f"{config.general_name}_{split}"
    on_domain = measure(embedder, Path(config.dataset_dir), split, preset.suite, preset.prompt_domain,
                        frozenset(quarantined), name=domain_set).named(domain_set)
    general = measure(embedder, Path(config.general_dataset_dir), split, name=general_set).named(general_set)
    return on_domain.metrics | general.metrics, on_domain.intervals | general.intervals


@task
def choose_mix(base_dir: str, tuned_dir: str, config: FinetuneConfig, quarantined: list[str],
               out_dir: str) -> tuple[str, float, list[dict]]:
    """The mix with the best domain metric on validation data among those within the forgetting limit
    (the least forgetting one when none is). A mix whose embeddings are not finite is never chosen."""
    preset, trials = domain(config.domain), []
    primary, general = f"{config.domain}_val/{preset.primary_metric}", f"{config.general_name}_val/mean_recall"
    for mix in WISE_FT_MIXES:
        candidate = mix_weights(Path(base_dir), Path(tuned_dir), mix, Path(out_dir) / f"mix-{mix}")
        try:
            metrics = measure_sets.fn(str(candidate), config, "val", quarantined)[0]
        except NonFiniteEmbeddings as error:
            get_run_logger().warning("WiSE-FT mix %s left out: %s", mix, error)
            continue
        trials.append({"mix": mix, "dir": str(candidate), primary: metrics[primary], general: metrics[general]})
    base_general = trials[0][general]  # mix 0 is the base model, measured finite before training
    within = [t for t in trials if t[general] >= base_general - config.max_general_drop]
    best = max(within, key=lambda t: (t[primary], t["mix"])) if within else max(trials, key=lambda t: t[general])
    return best["dir"], best["mix"], [{k: v for k, v in t.items() if k != "dir"} for t in trials]


@flow(name="finetune", log_prints=True)
def finetune(config: FinetuneConfig) -> FinetuneResult:
    platform, preset = Platform.from_env(), domain(config.domain)
    registry = platform.registry()
    base = registry.resolve(config.base_model)
    parent = f"{base.name}:{base.version}"
    report = validate_data(config.dataset_dir, config.dataset_version, config.dataset_hash, config.validation)
    quarantined = sorted(report.quarantined_ids)
    # Named by its inputs: re-running the same finetune resumes (or reuses) its training run.
    run = platform.runs / f"{config.domain}-{parent.replace(':', '-')}-{config_hash(config)}"
    base_dir = registry.download(base.name, base.version, run / "base")
    train_config = finetune_train_config(config, base_dir)
    tuned_dir = train_model(train_config, config.dataset_dir, config.dataset_version, config.dataset_hash, str(run),
                            quarantined)
    mix, trials = 1.0, []
    final_dir = tuned_dir
    if config.wise_ft:
        final_dir, mix, trials = choose_mix(str(base_dir), tuned_dir, config, quarantined, str(run / "wise-ft"))
    base_metrics = measure_sets(str(base_dir), config, "test", quarantined)[0]
    name = config.model_name or config.domain
    policy = GatePolicy.from_yaml(preset.policy)
    policy.forgetting[f"{config.general_name}_test/mean_recall"] = config.max_general_drop
    try:
        metrics, intervals = measure_sets(final_dir, config, "test", quarantined)
    except NonFiniteEmbeddings as error:
        metrics, verdict = {}, refused(policy, f"{config.domain}_test/embeddings", str(error))
    else:
        incumbent = registry.get_alias(name, "production")
        incumbent_metrics = registry.get_version(name, incumbent.version).metrics if incumbent else None
        verdict = evaluate_gate(policy, metrics, incumbent_metrics, parent=base_metrics, intervals=intervals)
    record = register_domain_version(name, final_dir, parent, metrics, verdict, mix, config)
    result = FinetuneResult(model=name, version=record.version, parent=parent, mix=mix, base_metrics=base_metrics,
                            metrics=metrics, verdict=verdict, primary_metric=f"{config.domain}_test/"
                                                                             f"{preset.primary_metric}")
    report_finetune(result, trials)
    return result


@task
def register_domain_version(name: str, artifact_dir: str, parent: str, metrics: dict[str, float],
                            verdict: GateVerdict, mix: float, config: FinetuneConfig):
    registry = Platform.from_env().registry()
    artifact = ModelArtifact.load_light(Path(artifact_dir))
    lineage = artifact.lineage.model_copy(update={"parent_model": parent, "metrics": metrics, "training": {
        **artifact.lineage.training, "domain": config.domain, "mode": config.mode, "wise_ft_mix": mix}})
    (Path(artifact_dir) / "lineage.json").write_text(lineage.model_dump_json(indent=2))
    record = registry.register(name, Path(artifact_dir), metrics=metrics, gate=verdict.model_dump(mode="json"),
                               lineage=lineage.model_dump(mode="json"), tags={"domain": config.domain,
                                                                               "parent": parent},
                               reason=f"finetuned from {parent} on {config.dataset_version}")
    logger = get_run_logger()
    if verdict.passed:
        previous = registry.get_alias(name, "candidate")
        registry.set_alias(name, "candidate", record.version, reason=f"gate {verdict.policy} passed")
        announce_alias_move(registry, name, "candidate", record.version, previous.version if previous else None,
                            parent=parent)
        logger.info("%s:%s passed gate %s; alias candidate moved to it", name, record.version, verdict.policy)
    else:
        logger.warning("%s:%s FAILED gate %s: %s", name, record.version, verdict.policy,
                       "; ".join(r.reason for r in verdict.failures))
    return record


def report_finetune(result: FinetuneResult, trials: list[dict]) -> None:
    rows = [{"metric": m, "base": f"{result.base_metrics.get(m, float('nan')):.4f}", "finetuned": f"{v:.4f}",
             "change": f"{v - result.base_metrics.get(m, float('nan')):+.4f}"} for m, v in result.metrics.items()]
    rules = [{"rule": r.rule, "result": "pass" if r.passed else "FAIL", "reason": r.reason}
             for r in result.verdict.rules]
    mixes = f"\n\n## WiSE-FT mixes (validation)\n\n{markdown_table(trials)}" if trials else ""
    key = f"finetune-{result.model.replace('_', '-')}"  # artifact keys allow no underscores
    create_markdown_artifact(key=key, description=f"{result.model}:{result.version}", markdown=(
        f"# `{result.model}:{result.version}` from `{result.parent}` (mix {result.mix}): gate "
        f"`{result.verdict.policy}` {'passed' if result.verdict.passed else 'FAILED'}\n\n{markdown_table(rows)}\n\n"
        f"## Gate\n\n{markdown_table(rules)}{mixes}"))
