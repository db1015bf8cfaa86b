"""Flow `pretrain`: train a dual encoder on a validated dataset and save the model artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from components.config import TrainConfig
from components.models.artifact import Lineage
from components.training.trainer import train
from flows.report import inline_png
from flows.settings import Platform, code_revision


@task
def train_model(train_config: TrainConfig, dataset_dir: str, dataset_version: str, dataset_hash: str, run_dir: str,
                quarantined: list[str]) -> str:
    lineage = Lineage(datasets={"train": dataset_version}, dataset_hashes={"train": dataset_hash},
                      code_revision=code_revision())
    result = train(train_config, Path(dataset_dir), Path(run_dir), lineage, frozenset(quarantined))
    artifact_dir = result.artifact.save(Path(run_dir) / "artifact")
    resumed = f"resumed from `{result.resumed_from}`" if result.resumed_from else "from scratch"
    create_markdown_artifact(key="training-run", description=f"Training on {dataset_version}", markdown=(
        f"# Training run `{Path(run_dir).name}`\n\n{result.artifact.lineage.training['steps']} steps, {resumed}; "
        f"W&B run `{result.wandb_run_id}` (offline files in `{run_dir}/wandb`).\n\n"
        f"Artifact: `{artifact_dir}`\n\n{inline_png(result.loss_curve, 'loss curve')}"))
    get_run_logger().info("trained %s steps; artifact at %s", result.artifact.lineage.training["steps"], artifact_dir)
    return str(artifact_dir)


@flow(name="pretrain", log_prints=True)
def pretrain(dataset_dir: str, dataset_version: str, dataset_hash: str = "",
             train_config: TrainConfig = TrainConfig(),  # noqa: B008 - a default the Prefect UI form shows
             run_name: str = "pretrain", quarantined: list[str] | None = None) -> str:
    """Train and return the model artifact directory; re-running with the same `run_name` resumes."""
    run_dir = Platform.from_env().runs / run_name
    return train_model(train_config, dataset_dir, dataset_version, dataset_hash, str(run_dir), quarantined or [])
