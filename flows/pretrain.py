"""Flow `pretrain`: validate a dataset (once per version), then train a dual encoder on it under a preset.

Training runs in the flow's process, is handed to torchrun (`scale.launcher`), which starts one process
per device running `components.training.launch` (the entry point the SLURM script in `infra/training`
runs on every node), or is submitted to Kubernetes as a multi-node PyTorchJob that the flow waits for
(`infra/pytorchjob.py`).
"""

from __future__ import annotations

from prefect import flow

from components.config import TrainConfig, ValidationConfig
from components.data.reference import DatasetRef
from components.domains import domain
from core.containment import segment_name
from flows.steps.datasets import on_this_machine
from flows.steps.platform import Platform
from flows.steps.training import run_folder, train_model, training_job
from flows.validate_data import validate_data
from infra.pytorchjob import ClusterJob


@flow(name="pretrain", log_prints=True)
def pretrain(dataset: DatasetRef,
             train: TrainConfig = TrainConfig(),  # noqa: B008 - a default the Prefect UI form shows
             run_name: str | None = None, *, preset: str = "general",
             validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
             cluster: ClusterJob | None = None) -> str:
    """Train on the validated dataset (quarantined rows left out) and return the model artifact directory;
    the run's folder is `run_name`, else named by the config and the data, so re-running resumes it and
    another dataset never does. `train` is laid over `preset`'s choices (augmentation, text preprocessing,
    image fit). With `train.scale.launcher` `kubernetes`, `cluster` says where the PyTorchJob runs."""
    resolved = domain(preset).apply(train)
    dataset = on_this_machine(dataset)
    settings = resolved.model_dump(mode="json")
    folder = segment_name(run_name, "run name") if run_name else run_folder("pretrain", settings, [dataset])
    validated = validate_data(dataset, validation)
    return train_model(training_job(resolved, validated, Platform.from_env().runs / folder), cluster)
