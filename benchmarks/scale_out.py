"""Scale-out of the data side, side by side in one run on the same files: images/s of the validation scan and of
gallery embedding in this process, on one Dask worker and on two (worker processes on 127.0.0.1, one thread
each, clusters started before the clock); the cost of one partition on the cluster (a partition of one image
of no work: the Prefect task run, the scheduler's round trip, the part written and read back), and the
partition size at which that cost is under 5% of the work.

Usage: python -m benchmarks.scale_out [--images 2000] [--size 128] [--preset tiny] [--partition 1024]
The last line: `scan local A; 1w B; 2w C img/s; embed local D; 1w E; 2w F img/s; overhead G ms/partition`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from components.partitions.plan import Work

OVERHEAD_PARTITIONS = 64
OVERHEAD_SHARE = 0.05


class Nothing(Work):
    """A partition's fixed cost alone: no input is read, an empty part is written and read back."""

    kind: ClassVar[str] = "nothing"
    suffix: ClassVar[str] = "json"

    def identity(self) -> str:
        return "nothing"

    def run(self, items: list[str]) -> list[str]:
        return []

    def save(self, part: list[str], path: Path) -> None:
        path.write_text(json.dumps(part))

    def load(self, path: Path) -> list[str]:
        return json.loads(path.read_text())

    def combine(self, parts: list[list[str]]) -> int:
        return len(parts)


def warm(scan: Work, embed: Work, images: list[str]) -> None:
    """On a worker: what the first partition would pay once (imports, the model's load), paid before the clock."""
    scan.run(images)
    embed.run(images)


def measure(args: argparse.Namespace, root: Path) -> dict:
    from distributed import Client, LocalCluster
    from prefect import flow

    from benchmarks.common import untrained_artifact
    from components.config import SyntheticDataConfig, ValidationConfig
    from components.curation.works import ImageWork
    from components.data.generators.synthetic import generate_dataset
    from components.data.location import ImageRoot
    from components.data.manifest import read_manifest
    from components.models.directory import ModelDirectory
    from components.partitions.plan import IN_PROCESS
    from components.validation.image_scan import ScanWork
    from flows.steps.cluster import Cluster

    dataset = root / "data"
    generate_dataset(SyntheticDataConfig(train_images=args.images, val_images=1, test_images=1,
                                         image_size=args.size, captions_per_image=1), dataset)
    images = read_manifest(dataset)["image"].unique().tolist()
    image_root = ImageRoot(root=str(dataset))
    scan = ScanWork(root=image_root, config=ValidationConfig())
    model = ModelDirectory(path=str(untrained_artifact(root, args.preset)), batch_size=args.batch)
    embed = ImageWork(root=image_root, model=model, perceptual=False)
    rates = {}

    def timed(label: str, runner, work: Work, items: list[str]) -> float:
        started = time.perf_counter()
        runner.map(work, items)
        seconds = time.perf_counter() - started
        print(f"{label}: {len(items)} in {seconds:.2f} s", file=sys.stderr, flush=True)
        return len(items) / seconds

    @flow(name="benchmark-scale-out")
    def run() -> None:
        warm(scan, embed, images[:4])  # in this process too
        rates["scan local"] = timed("scan, in process", IN_PROCESS, scan, images)
        rates["embed local"] = timed("embed, in process", IN_PROCESS, embed, images)
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                on = Cluster(address=cluster.scheduler_address, partition_size=args.partition,
                             batch_size=args.batch, parts=str(root / "parts"))
                with Client(cluster, set_as_default=False) as client:  # not a default: prefect-dask would take it
                    client.run(warm, scan, embed, images[:4])  # each worker's imports and model, off the clock
                rates[f"scan {workers}w"] = timed(f"scan, {workers} workers", on.runner("bench"), scan, images)
                rates[f"embed {workers}w"] = timed(f"embed, {workers} workers", on.runner("bench"), embed, images)
                if workers == 1:
                    nothing = [f"item-{i}" for i in range(OVERHEAD_PARTITIONS)]
                    one_each = on.model_copy(update={"partition_size": 1}).runner("overhead")
                    rates["partitions/s"] = timed("partitions of no work, 1 worker", one_each, Nothing(), nothing)

    run()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128, help="pixels on a side")
    parser.add_argument("--preset", default="tiny", help="the model preset that embeds")
    parser.add_argument("--partition", type=int, default=1024, help="images per partition (the CLI default)")
    parser.add_argument("--batch", type=int, default=64, help="images per forward pass")
    args = parser.parse_args()
    from components.runtime import configure_environment

    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        rates = measure(args, Path(tmp))
    overhead_ms = 1000 / rates["partitions/s"]
    for kind in ("scan", "embed"):
        per_image_ms = 1000 / rates[f"{kind} 1w"]
        smallest = overhead_ms / (OVERHEAD_SHARE * per_image_ms)
        print(f"{kind}: {per_image_ms:.2f} ms per image on one worker; the partition's cost is under "
              f"{OVERHEAD_SHARE:.0%} from {smallest:,.0f} images per partition")
    print(f"scan local {rates['scan local']:.0f}; 1w {rates['scan 1w']:.0f}; 2w {rates['scan 2w']:.0f} img/s; "
          f"embed local {rates['embed local']:.0f}; 1w {rates['embed 1w']:.0f}; 2w {rates['embed 2w']:.0f} img/s; "
          f"overhead {overhead_ms:.0f} ms/partition")


if __name__ == "__main__":
    main()
