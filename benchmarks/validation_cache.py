"""What resolving a dataset once buys: the `validate_data` flow on a versioned dataset (its DVC hash known)
scans it the first time and answers from the cache after; on the same bytes unversioned (no hash) it scans
every time. The three are timed side by side in one process, on one Prefect test API.

Usage: python -m benchmarks.validation_cache [--images 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images (5 captions each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from components.runtime import configure_environment

    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        from prefect.testing.utilities import prefect_test_harness

        from components.config import SyntheticDataConfig, ValidationConfig
        from components.data.generators.synthetic import generate_dataset
        from components.data.reference import DatasetRef
        from flows.validate_data import validate_data
        from infra.workspace import directory_md5

        dataset = Path(tmp) / "dataset"
        generate_dataset(SyntheticDataConfig(train_images=args.images), dataset)
        versioned = DatasetRef(path=str(dataset), ref="bench@1", hash=directory_md5(dataset))
        unversioned = DatasetRef(path=str(dataset))
        config = ValidationConfig()
        with prefect_test_harness(server_startup_timeout=120):
            first = timed(lambda: validate_data(versioned, config))
            cached = [timed(lambda: validate_data(versioned, config)) for _ in range(args.repeats)]
            rescanned = [timed(lambda: validate_data(unversioned, config)) for _ in range(args.repeats)]
        rows = (args.images + 200) * 5
        print(f"{args.images + 200} images, {rows} rows; median of {args.repeats}")
        print(f"versioned, first run (scans):      {first:7.2f} s")
        print(f"versioned, again (cached):         {statistics.median(cached):7.2f} s")
        print(f"unversioned, every run (scans):    {statistics.median(rescanned):7.2f} s")
        print(f"cached / scanned:                  {statistics.median(cached) / statistics.median(rescanned):7.3f}")


if __name__ == "__main__":
    main()
