"""Entry point of one training process, for launchers that start every rank themselves (torchrun, SLURM's
srun, a Kubernetes PyTorchJob). Lightning reads the rank layout from their environment variables.

    python -m components.training.launch --config train.json --dataset DIR --run-dir DIR [--lineage FILE]

Rank 0 writes the model artifact to `<run dir>/artifact`; every rank resumes from the run's last checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from components.config import TrainConfig
from components.models.artifact import Lineage
from components.runtime import configure_environment
from components.training.trainer import train

ARTIFACT_DIR = "artifact"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="TrainConfig as JSON")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset directory (manifest + files)")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--lineage", type=Path, help="Lineage as JSON (dataset versions, code revision)")
    parser.add_argument("--exclude", type=Path, help="file of quarantined sample ids, one per line")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    configure_environment()
    config = TrainConfig.model_validate_json(args.config.read_text())
    lineage = Lineage.model_validate_json(args.lineage.read_text()) if args.lineage else Lineage()
    exclude = frozenset(args.exclude.read_text().split()) if args.exclude else frozenset()
    result = train(config, args.dataset, args.run_dir, lineage, exclude)
    if result.is_global_zero:
        result.artifact.save(args.run_dir / ARTIFACT_DIR)


if __name__ == "__main__":
    main()
