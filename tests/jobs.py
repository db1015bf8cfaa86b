"""Training jobs for tests: a config, a dataset directory and a run folder, as the flows make them."""

from __future__ import annotations

from pathlib import Path

from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.models.artifact import Lineage
from components.training.job import TrainingJob
from components.validation.validated import ValidatedDataset


def job(config: TrainConfig, dataset: Path, run_dir: Path, exclude: frozenset[str] = frozenset(),
        lineage: Lineage | None = None) -> TrainingJob:
    data = ValidatedDataset(dataset=DatasetRef(path=str(dataset)), quarantined=exclude)
    return TrainingJob(config=config, data=data, run_dir=str(run_dir), lineage=lineage or Lineage())
