"""What signing costs: register, download and a bento's start-up check of an artifact of --size-mb (default
500, in four files), signed against unsigned, side by side in one run on a local store (interleaved, each
going first in turn; median of --repeats). Signing and verifying work from the digests the registry
computes anyway, so the difference should be a few milliseconds; the bento's check re-hashes the files it
serves.
Usage: python -m benchmarks.signing [--size-mb 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from core.digest import sha256_file
from registry.access import Trust
from registry.registry import Registry
from registry.signing import SigningKey, TrustedKeys, create_key
from serving.provenance import Provenance, pack, verify_served_model


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        artifact = work / "artifact"
        artifact.mkdir()
        for i in range(4):
            (artifact / f"part-{i}.bin").write_bytes(os.urandom(args.size_mb * 2**20 // 4))
        create_key(work / "key.pem", work / "trusted" / "bench.pub")
        trust = Trust(TrustedKeys.from_folder(work / "trusted"), SigningKey.load(work / "key.pem"))
        stores = {"unsigned": Registry.local(work / "plain"), "signed": Registry.local(work / "signed", trust)}
        times: dict[str, list[float]] = {f"{op} {kind}": [] for op in ("register", "download") for kind in stores}
        times |= {"bento check (signed)": [], "sha256 of the files": []}
        for i in range(args.repeats):
            order = list(stores.items()) if i % 2 == 0 else list(stores.items())[::-1]  # neither always goes first
            for kind, registry in order:
                times[f"register {kind}"].append(timed(lambda r=registry: r.register("big", artifact)))
                times[f"download {kind}"].append(timed(lambda r=registry, v=i + 1, k=kind: r.download(
                    "big", v, work / f"out-{k}")))
            served = work / "out-signed"
            pack(served, Provenance(ref=f"big:{i + 1}", signature_required=True), trust.trusted)
            times["bento check (signed)"].append(timed(lambda s=served: verify_served_model(s)))
            times["sha256 of the files"].append(timed(lambda: [sha256_file(p) for p in artifact.iterdir()]))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.size_mb} MB in 4 files, median of {args.repeats}, local store")
    for op in ("register", "download"):
        signed, plain = median[f"{op} signed"], median[f"{op} unsigned"]
        print(f"{op:9s} unsigned {plain:6.2f} s   signed {signed:6.2f} s   ratio {signed / plain:5.2f}")
    check, hashing = median["bento check (signed)"], median["sha256 of the files"]
    print(f"bento start-up check {check:6.2f} s against sha256 of the same files {hashing:6.2f} s "
          f"(ratio {check / hashing:5.2f})")


if __name__ == "__main__":
    main()
