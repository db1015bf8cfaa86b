"""Flow `pretrain`: validate a dataset (once per version), then train a dual encoder on it under a preset.

Training runs in the flow's process, is handed to torchrun (`scale.launcher`), which starts one process
per device running `components.training.launch` (the entry point the SLURM script in `infra/training`
runs on every node), or is submitted to Kubernetes as a multi-node PyTorchJob that the flow waits for
(`infra/pytorchjob.py`).
"""

from __future__ import annotations

from prefect import flow

from components.config import TrainConfig, ValidationConfig
from components.containment import segment_name
from components.data.reference import DatasetRef
from components.domains import domain
from flows.settings import Platform
from flows.training import train_model, training_job
from flows.validate_data import validate_data
from infra.pytorchjob import ClusterJob


@flow(name="pretrain", log_prints=True)
def pretrain(dataset: DatasetRef,
             train: TrainConfig = TrainConfig(),  # noqa: B008 - a default the Prefect UI form shows
             run_name: str = "pretrain", *, preset: str = "general",
             validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
             cluster: ClusterJob | None = None) -> str:
    """Train on the validated dataset (quarantined rows left out) and return the model artifact directory;
    re-running with the same `run_name` resumes. `train` is laid over `preset`'s choices (augmentation,
    text preprocessing, image fit). With `train.scale.launcher` `kubernetes`, `cluster` says where the
    PyTorchJob runs."""
    run_dir = Platform.from_env().runs / segment_name(run_name, "run name")  # one folder under runs/, no more
    validated = validate_data(dataset, validation)
    return train_model(training_job(domain(preset).apply(train), validated, run_dir), cluster)
