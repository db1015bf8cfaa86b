"""Serving through onnxruntime against PyTorch, side by side in one run, on 127.0.0.1.

Two bentos of the same artifact differ only in `runtime` (torch, onnx); batching is on in both. For each,
closed-loop clients at concurrency 1 and 32 send single-item `encode_text` and `encode_image` requests,
bounded in count (--requests) and time (--seconds). A table measured in this process gives each runtime's
model-only cost per item at batch 1 and 32 (no HTTP). The client shares the machine's cores with the
server: compare the ratios, not the absolute figures.
Usage: python -m benchmarks.onnx_serving [--requests 1500] [--seconds 15] [--preset tiny|small|base]
The last line: `image torch A onnx B ok/s; text torch C onnx D ok/s` (concurrency 32).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path

from benchmarks.common import untrained_artifact
from benchmarks.serving_load import model_ceiling, payloads, server_levels
from components.runtime import configure_environment

LEVELS = (1, 32)
RUNTIMES = ("torch", "onnx")


def model_only(artifact: Path, onnx_dir: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """Per-item milliseconds at batch 1 and 32 for each runtime and route (serving_load's ceiling)."""
    from components.interop.onnx import OnnxEncoders
    from components.models.embedder import Embedder

    torch_embedder = Embedder.load(artifact)
    onnx_embedder = Embedder.with_encoders(torch_embedder.config, torch_embedder.tokenizer, 1.0,
                                           OnnxEncoders(onnx_dir))
    return {(runtime, route): cost for runtime, embedder in (("torch", torch_embedder), ("onnx", onnx_embedder))
            for route, cost in model_ceiling(embedder).items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--preset", default="small", help="model size (tiny is all HTTP; small is a ViT-S)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        from components.interop.onnx import export_onnx
        from components.models.artifact import ModelArtifact
        from serving.options import ServingOptions
        from serving.package import build_bento, import_model
        from serving.smoke import BentoServer
        from serving.standin import as_downloaded

        artifact = untrained_artifact(Path(tmp), args.preset)
        onnx_dir = Path(tmp) / "onnx"
        onnx_dir.mkdir()
        export_onnx(ModelArtifact.load(artifact), onnx_dir)
        ceiling = model_only(artifact, onnx_dir)
        downloaded, provenance, trusted = as_downloaded(artifact, Path(tmp) / "registry")
        gc.collect()
        gc.freeze()
        results: dict[tuple[str, str, int], dict] = {}
        for runtime in RUNTIMES:
            model_tag = import_model(downloaded, f"alignops-bench-{runtime}", {}, provenance=provenance,
                                     trusted=trusted, runtime=runtime)
            with BentoServer(build_bento(model_tag, {}, ServingOptions(runtime=runtime))) as server:
                results |= server_levels(server, runtime, LEVELS, args.requests, args.seconds)
    report(args.preset, results, ceiling)


def report(preset: str, results: dict[tuple[str, str, int], dict],
           ceiling: dict[tuple[str, str], tuple[float, float]]) -> None:
    print(f"preset {preset}; batching on; ok/s counts successful answers only")
    print(f"{'runtime':8s} {'route':13s} {'conc':>4s} {'ok/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'n':>5s} "
          f"{'errors':>6s} {'encoder cpu ms':>14s}")
    for (runtime, route, concurrency), r in results.items():
        print(f"{runtime:8s} {route:13s} {concurrency:4d} {r['rps']:8.1f} {r['p50']:8.1f} {r['p95']:8.1f} "
              f"{r['n']:5d} {r['errors']:6d} {r['cpu_ms']['encoder']:14.2f}")
    for (runtime, route), (single, batched) in ceiling.items():
        print(f"model only, {runtime:5s} {route}: {single:.2f} ms per item at batch 1, {batched:.2f} at batch 32")
    for route in payloads():
        for concurrency in LEVELS:
            ratio = results[("onnx", route, concurrency)]["rps"] / results[("torch", route, concurrency)]["rps"]
            print(f"{route} at concurrency {concurrency}: onnx / torch = {ratio:.2f}x throughput")
    rate = {(runtime, route): results[(runtime, route, 32)]["rps"] for runtime in RUNTIMES for route in payloads()}
    print(f"image torch {rate[('torch', 'encode_image')]:.1f} onnx {rate[('onnx', 'encode_image')]:.1f} ok/s; "
          f"text torch {rate[('torch', 'encode_text')]:.1f} onnx {rate[('onnx', 'encode_text')]:.1f} ok/s")


if __name__ == "__main__":
    main()
