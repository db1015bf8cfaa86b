"""Registry on S3 (moto's server on 127.0.0.1) against plain boto3, side by side in one run.

1. Register and download an artifact of --size-mb (default 500): throughput against a plain boto3
   upload_file / download_file of the same bytes (default transfer settings). The registry's figure
   includes what it does beyond moving bytes: sha256 of every file, the version claim, version.json,
   the audit event, and verification of every byte on download.
2. `list_versions` with --versions (default 1,000) registered versions.
Usage: python -m benchmarks.registry [--size-mb 500] [--versions 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3

from registry.local_s3 import MotoServer
from registry.registry import Registry


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def transfer_times(client, registry: Registry, artifact: Path, scratch: Path, repeats: int) -> dict[str, list[float]]:
    """Each operation `repeats` times, interleaved, so drift in the server's state hits both sides alike."""
    weights = artifact / "model.safetensors"
    times: dict[str, list[float]] = {"boto3 upload_file": [], "registry register": [], "boto3 download_file": [],
                                     "registry download": []}
    for i in range(repeats):
        key = f"plain/{i}"
        times["boto3 upload_file"].append(timed(lambda k=key: client.upload_file(str(weights), "bench", k)))
        times["registry register"].append(timed(lambda: registry.register("big", artifact)))
        times["boto3 download_file"].append(timed(lambda k=key: client.download_file("bench", k,
                                                                                     str(scratch / "plain.bin"))))
        times["registry download"].append(timed(lambda v=i + 1: registry.download("big", v, scratch / "out")))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server = MotoServer()
    os.environ.update({"AWS_ENDPOINT_URL_S3": server.url, "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory() as tmp:
            artifact = Path(tmp) / "artifact"
            artifact.mkdir()
            (artifact / "config.json").write_text("{}")
            with open(artifact / "model.safetensors", "wb") as f:
                for _ in range(args.size_mb):
                    f.write(os.urandom(2**20))
            size_mb = sum(p.stat().st_size for p in artifact.iterdir()) / 2**20
            times = transfer_times(client, Registry.from_url("s3://bench/registry"), artifact, Path(tmp),
                                   args.repeats)
            median = {name: statistics.median(values) for name, values in times.items()}
            print(f"artifact {size_mb:.0f} MB through moto on 127.0.0.1, median of {args.repeats} interleaved runs")
            for name, seconds in median.items():
                print(f"  {name:20s} {seconds:7.2f} s  {size_mb / seconds:7.1f} MB/s   "
                      f"(runs: {', '.join(f'{t:.2f}' for t in times[name])})")
            print(f"  registry/boto3 throughput: register "
                  f"{median['boto3 upload_file'] / median['registry register']:.2f}x, "
                  f"download {median['boto3 download_file'] / median['registry download']:.2f}x")

            small = Path(tmp) / "small"
            small.mkdir()
            (small / "config.json").write_text("{}")
            listing = Registry.from_url("s3://bench/listing")
            register_s = timed(lambda: [listing.register("many", small) for _ in range(args.versions)])
            list_s = timed(lambda: listing.list_versions("many"))
            print(f"{args.versions} versions: register {register_s / args.versions * 1000:.1f} ms each; "
                  f"list_versions {list_s:.2f} s ({list_s / args.versions * 1000:.2f} ms per version)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
