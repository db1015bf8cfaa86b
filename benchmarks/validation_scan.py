"""Validation scan throughput: the threaded scan against a single-threaded Pillow loop on the same
files, side by side; and peak memory of the whole validation (scan + GX suite) on --images images.

Each variant runs in its own subprocess; peak RSS is sampled over it and every worker it starts.
Usage: python -m benchmarks.validation_scan [--images 20000] [--size 224] [--workers CORES]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def pillow_loop(dataset: Path) -> int:
    """The baseline: open and fully decode each image, one at a time."""
    from PIL import Image

    from components.data.manifest import read_manifest

    images = read_manifest(dataset)["image"].unique()
    for image in images:
        with Image.open(dataset / image) as img:
            img.load()
    return len(images)


class TreePeakRss:
    """Peak resident memory of this process and all its descendants (pool workers included), sampled."""

    def __enter__(self) -> TreePeakRss:
        import psutil

        self.peak, self._stop = 0, threading.Event()
        me = psutil.Process()

        def sample() -> None:
            while not self._stop.wait(0.02):
                total = 0
                for proc in [me, *me.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_variant(variant: str, dataset: Path, workers: int) -> dict:
    from components.config import ValidationConfig
    from components.data.location import ImageRoot
    from components.data.manifest import read_manifest
    from components.validation.image_scan import scan_images
    from components.validation.validate import validate_dataset

    config = ValidationConfig(workers=workers)
    started = time.perf_counter()
    with TreePeakRss() as memory:
        if variant == "pillow-loop":
            images = pillow_loop(dataset)
        elif variant == "scan":
            names = read_manifest(dataset)["image"].unique().tolist()
            images = len(scan_images(ImageRoot(root=str(dataset)), names, config))
        else:
            images = validate_dataset(dataset, config).image_facts.images
    seconds = time.perf_counter() - started
    return {"variant": variant, "images": images, "seconds": seconds, "peak_rss_mb": memory.peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--variant")
    parser.add_argument("--dataset", type=Path)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.dataset, args.workers)))
        return
    from components.config import SyntheticDataConfig
    from components.data.generators.synthetic import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "ds"
        generate_dataset(SyntheticDataConfig(train_images=args.images - 200, val_images=100, test_images=100,
                                             image_size=args.size), dataset)
        rows = []
        for variant in ("pillow-loop", "scan", "validate"):
            out = subprocess.run([sys.executable, "-m", "benchmarks.validation_scan", "--variant", variant,
                                  "--dataset", str(dataset), "--workers", str(args.workers)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.images} images of {args.size} px (JPEG and PNG, 5 captions each), {args.workers} scan workers")
    for r in rows:
        print(f"  {r['variant']:12s} {r['seconds']:7.2f} s  {r['images'] / r['seconds']:8.0f} images/s  "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB (all processes)")
    loop, scan = rows[0], rows[1]
    print(f"  parallel scan / single-threaded Pillow loop: {loop['seconds'] / scan['seconds']:.2f}x throughput "
          f"(the scan also reads every byte for sha256 and checks EXIF, size and aspect)")


if __name__ == "__main__":
    main()
