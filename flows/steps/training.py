"""Task `train_model`: a training job run by its launcher (in this process, torchrun, or a Kubernetes
PyTorchJob the flow waits for), leaving the model artifact and a training report."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.models.artifact import Lineage, ModelArtifact
from components.storage import upload
from components.training.job import TrainingJob
from components.training.launch import ARTIFACT_DIR
from components.training.trainer import train
from components.validation.validated import ValidatedDataset
from core.containment import segment_name
from flows.steps.output import inline_png
from flows.steps.platform import code_revision
from infra.pytorchjob import ClusterJob, fetch_artifact, render, submit, wait


def run_folder(kind: str, settings: dict[str, Any], datasets: list[DatasetRef | None]) -> str:
    """A run's one folder under runs/, named by what the run is: its kind (which may name a base model), its
    settings and the content of every dataset it trains on. Re-running the same run resumes it; another
    dataset, or the same folder with other bytes, is another run and never resumes this one's checkpoint."""
    keys = [d.content_key() if d else "" for d in datasets]
    digest = hashlib.sha256(json.dumps([settings, keys], sort_keys=True).encode()).hexdigest()[:16]
    label = next((d.label for d in datasets if d), "data")
    return segment_name(f"{kind}-{label}-{digest}", "run name")


def training_job(config: TrainConfig, data: ValidatedDataset, run_dir: Path,
                 replay: ValidatedDataset | None = None) -> TrainingJob:
    """The job of one run: its lineage names every dataset it trains on by role (`train`, and `replay` for
    the general data a finetune rehearses), each version with its hash, and this code's revision."""
    used = {"train": data.dataset} | ({"replay": replay.dataset} if replay and config.data.replay_fraction else {})
    lineage = Lineage(datasets={role: d.recorded for role, d in used.items()},
                      dataset_hashes={role: d.hash for role, d in used.items()}, code_revision=code_revision())
    return TrainingJob(config=config, data=data, run_dir=str(run_dir), lineage=lineage, replay=replay)


def in_process(job: TrainingJob, cluster: ClusterJob | None) -> Path:
    return train(job, report=progress_artifact()).artifact.save(Path(job.run_dir) / ARTIFACT_DIR)


def progress_artifact():
    """A Prefect progress artifact the training's progress lines move (percent done, the estimate and ETA in
    its description), so the UI shows what the terminal does."""
    artifact = create_progress_artifact(0.0, key="training-progress", description="training: starting")

    def report(percent: float, line: str) -> None:
        update_progress_artifact(artifact, min(percent, 100.0), description=f"training: {line}")

    return report


def torchrun_command(job: TrainingJob) -> list[str]:
    """Write the job next to its run and return the torchrun command that runs it, one process per device."""
    job_file = job.write(Path(job.run_dir) / "launch")
    devices = job.config.scale.devices
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={devices if isinstance(devices, int) else 'gpu'}",
            "-m", "components.training.launch", "--job", str(job_file)]


def with_torchrun(job: TrainingJob, cluster: ClusterJob | None) -> Path:
    completed = subprocess.run(torchrun_command(job), check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"torchrun training exited with {completed.returncode}; the ranks' output is above, and "
                           f"re-running the flow with the same run name resumes from {job.run_dir}/checkpoints")
    return Path(job.run_dir) / ARTIFACT_DIR


def on_kubernetes(job: TrainingJob, cluster: ClusterJob | None) -> Path:
    if cluster is None:
        raise ValueError("launcher `kubernetes` needs the `cluster` parameter (image, runs_uri, namespace...)")
    run_dir = Path(job.run_dir)
    dataset_uri = f"{cluster.runs_uri.rstrip('/')}/{run_dir.name}/dataset"
    upload(job.dataset_dir, dataset_uri)  # the pods share no disk with this flow
    config_map, pytorch_job = render(job, cluster, dataset_uri)
    submit(config_map, pytorch_job)
    wait(pytorch_job, cluster, report=get_run_logger().info)
    return fetch_artifact(cluster, run_dir.name, run_dir)


LAUNCHERS = {"in_process": in_process, "torchrun": with_torchrun, "kubernetes": on_kubernetes}


@task
def train_model(job: TrainingJob, cluster: ClusterJob | None = None) -> str:
    """Run the job with its config's launcher; returns the artifact directory."""
    run = Path(job.run_dir)
    attempts_before = len(list((run / "logs").glob("attempt-*")))
    launcher = job.config.scale.launcher
    artifact_dir = LAUNCHERS[launcher](job, cluster)
    training = ModelArtifact.load_light(artifact_dir).lineage.training
    resumed = f"resumed (attempt {attempts_before + 1})" if attempts_before else "from scratch"
    create_markdown_artifact(key="training-run", description=f"Training on {job.data.dataset.ref}", markdown=(
        f"# Training run `{run.name}`\n\n{training['steps']} steps, {resumed}, launcher `{launcher}`; "
        f"W&B run `{training.get('wandb_run_id')}` (offline files in `{run}/wandb`).\n\n"
        f"Artifact: `{artifact_dir}`\n\n{inline_png(run / 'loss_curve.png', 'loss curve')}"))
    get_run_logger().info("trained %s steps; artifact at %s", training["steps"], artifact_dir)
    return str(artifact_dir)
