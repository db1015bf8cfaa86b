"""Flow `pretrain`: train a dual encoder on a validated dataset and save the model artifact.

Training runs in the flow's process, is handed to torchrun (`TrainConfig.launcher`), which starts one
process per device running `components.training.launch` (the entry point the SLURM script in
`infra/training` runs on every node), or is submitted to Kubernetes as a multi-node PyTorchJob that the
flow waits for (`infra/pytorchjob.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from components.config import TrainConfig
from components.containment import segment_name
from components.models.artifact import Lineage, ModelArtifact
from components.storage import upload
from components.training.launch import ARTIFACT_DIR
from components.training.trainer import train
from flows.report import inline_png
from flows.settings import Platform, code_revision
from infra.pytorchjob import ClusterJob, fetch_artifact, render, submit, wait


def torchrun_command(config: TrainConfig, dataset_dir: Path, run_dir: Path, lineage: Lineage,
                     quarantined: list[str]) -> list[str]:
    """Write the run's inputs next to it and return the torchrun command that trains on them."""
    inputs = run_dir / "launch"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "train.json").write_text(config.model_dump_json(indent=2))
    (inputs / "lineage.json").write_text(lineage.model_dump_json(indent=2))
    (inputs / "exclude.txt").write_text("\n".join(quarantined))
    processes = config.devices if isinstance(config.devices, int) else "gpu"
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "components.training.launch", "--config", str(inputs / "train.json"), "--dataset", str(dataset_dir),
            "--run-dir", str(run_dir), "--lineage", str(inputs / "lineage.json"),
            "--exclude", str(inputs / "exclude.txt")]


def run_torchrun(config: TrainConfig, dataset_dir: Path, run_dir: Path, lineage: Lineage,
                 quarantined: list[str]) -> Path:
    completed = subprocess.run(torchrun_command(config, dataset_dir, run_dir, lineage, quarantined), check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun training exited with {completed.returncode}; the ranks' output is above, and "
                           f"re-running the flow with the same run name resumes from {run_dir}/checkpoints")
    return run_dir / ARTIFACT_DIR


def run_on_kubernetes(config: TrainConfig, cluster: ClusterJob | None, dataset_dir: Path, run_dir: Path,
                      lineage: Lineage, quarantined: list[str]) -> Path:
    if cluster is None:
        raise ValueError("launcher `kubernetes` needs the `cluster` parameter (image, runs_uri, namespace...)")
    dataset_uri = f"{cluster.runs_uri.rstrip('/')}/{run_dir.name}/dataset"
    upload(dataset_dir, dataset_uri)  # the pods share no disk with this flow
    config_map, job = render(run_dir.name, config, cluster, dataset_uri, lineage, quarantined)
    submit(config_map, job)
    wait(job, cluster, report=get_run_logger().info)
    return fetch_artifact(cluster, run_dir.name, run_dir)


@task
def train_model(train_config: TrainConfig, dataset_dir: str, dataset_version: str, dataset_hash: str, run_dir: str,
                quarantined: list[str], cluster: ClusterJob | None = None) -> str:
    lineage = Lineage(datasets={"train": dataset_version}, dataset_hashes={"train": dataset_hash},
                      code_revision=code_revision())
    run = Path(run_dir)
    attempts_before = len(list((run / "logs").glob("attempt-*")))
    if train_config.launcher == "torchrun":
        artifact_dir = run_torchrun(train_config, Path(dataset_dir), run, lineage, quarantined)
    elif train_config.launcher == "kubernetes":
        artifact_dir = run_on_kubernetes(train_config, cluster, Path(dataset_dir), run, lineage, quarantined)
    else:
        artifact_dir = train(train_config, Path(dataset_dir), run, lineage, frozenset(quarantined)).artifact.save(
            run / ARTIFACT_DIR)
    training = ModelArtifact.load_light(artifact_dir).lineage.training
    resumed = f"resumed (attempt {attempts_before + 1})" if attempts_before else "from scratch"
    create_markdown_artifact(key="training-run", description=f"Training on {dataset_version}", markdown=(
        f"# Training run `{run.name}`\n\n{training['steps']} steps, {resumed}, launcher `{train_config.launcher}`; "
        f"W&B run `{training.get('wandb_run_id')}` (offline files in `{run_dir}/wandb`).\n\n"
        f"Artifact: `{artifact_dir}`\n\n{inline_png(run / 'loss_curve.png', 'loss curve')}"))
    get_run_logger().info("trained %s steps; artifact at %s", training["steps"], artifact_dir)
    return str(artifact_dir)


@flow(name="pretrain", log_prints=True)
def pretrain(dataset_dir: str, dataset_version: str, dataset_hash: str = "",
             train_config: TrainConfig = TrainConfig(),  # noqa: B008 - a default the Prefect UI form shows
             run_name: str = "pretrain", quarantined: list[str] | None = None,
             cluster: ClusterJob | None = None) -> str:
    """Train and return the model artifact directory; re-running with the same `run_name` resumes. With
    `train_config.launcher` `kubernetes`, `cluster` says where the PyTorchJob runs."""
    run_dir = Platform.from_env().runs / segment_name(run_name, "run name")  # one folder under runs/, no more
    return train_model(train_config, dataset_dir, dataset_version, dataset_hash, str(run_dir), quarantined or [],
                       cluster)
