"""Entry point of one training process, for launchers that start every rank themselves (torchrun, SLURM's
srun, a Kubernetes PyTorchJob). Lightning reads the rank layout from their environment variables.

    python -m components.training.launch --job job.json [--dataset s3://...] [--run-dir DIR]
        [--artifact-uri s3://...]

The job (`components.training.job.TrainingJob`: resolved config, validated dataset with its quarantine,
lineage) is the one the `pretrain` flow writes to `<run dir>/launch/job.json`.

Rank 0 writes the model artifact to `<run dir>/artifact` (and uploads it to `--artifact-uri`, for pods that
share no disk with whoever waits for it); every rank resumes from the run's last checkpoint.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from components.runtime import configure_environment
from components.storage import upload
from components.training.job import TrainingJob
from components.training.trainer import train

ARTIFACT_DIR = "artifact"
LOSS_CURVE = "loss_curve.png"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, required=True, help="TrainingJob as JSON")
    parser.add_argument("--dataset", help="read the dataset from here instead (an s3:// copy, for pods)")
    parser.add_argument("--run-dir", type=Path, help="the run directory on this machine (default: the job's)")
    parser.add_argument("--artifact-uri", help="where rank 0 also uploads the artifact (s3://...)")
    return parser


def local_dataset(dataset: str, run_dir: Path) -> Path:
    """The dataset as a local directory: a remote copy is downloaded into the run directory once per pod (by
    local rank 0; the pod's other ranks wait for it)."""
    if "://" not in dataset:
        return Path(dataset)
    import fsspec

    target, done = run_dir / "dataset", run_dir / "dataset.complete"
    if os.environ.get("LOCAL_RANK", "0") == "0" and not done.exists():
        fs, path = fsspec.core.url_to_fs(dataset)
        fs.get(path.rstrip("/") + "/", str(target), recursive=True)
        done.touch()
    deadline = time.monotonic() + 3600
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"local rank 0 did not finish downloading {dataset} within an hour")
        time.sleep(1)
    return target


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    configure_environment()
    job = TrainingJob.read(args.job)
    run_dir = args.run_dir or Path(job.run_dir)
    dataset = local_dataset(args.dataset or str(job.dataset_dir), run_dir)
    result = train(job.placed(dataset, run_dir))
    if result.is_global_zero:
        saved = result.artifact.save(run_dir / ARTIFACT_DIR)
        if args.artifact_uri:
            upload(saved, args.artifact_uri)
            if result.loss_curve.is_file():  # beside the artifact, for the flow's training report
                upload(result.loss_curve, f"{args.artifact_uri.rstrip('/').rsplit('/', 1)[0]}/{LOSS_CURVE}")


if __name__ == "__main__":
    main()
