"""One training run, as one typed object: what every launcher (in-process, torchrun, Kubernetes) takes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from components.config import TrainConfig
from components.models.artifact import Lineage
from components.validation.validated import ValidatedDataset

JOB_FILE = "job.json"


class TrainingJob(BaseModel):
    """A resolved config (preset applied), a validated dataset (and the validated dataset it replays, for a
    finetune guarding against forgetting), where the run lives, and the lineage its artifact will carry.
    Written as `job.json` for launchers that start processes elsewhere."""

    config: TrainConfig
    data: ValidatedDataset
    run_dir: str
    lineage: Lineage
    replay: ValidatedDataset | None = None

    @property
    def replay_dir(self) -> Path | None:
        return Path(self.replay.dataset.path) if self.replay and self.config.data.replay_fraction > 0 else None

    @property
    def dataset_dir(self) -> Path:
        return Path(self.data.dataset.path)

    @property
    def exclude(self) -> frozenset[str]:
        return self.data.quarantined

    def placed(self, dataset_dir: Path, run_dir: Path) -> TrainingJob:
        """The same job where this machine holds the dataset and the run (a pod, a SLURM node)."""
        dataset = self.data.dataset.model_copy(update={"path": str(dataset_dir)})
        return self.model_copy(update={"run_dir": str(run_dir),
                                       "data": self.data.model_copy(update={"dataset": dataset})})

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / JOB_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> TrainingJob:
        return cls.model_validate_json(Path(path).read_text())
