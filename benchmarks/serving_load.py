"""Load test of a served bento on 127.0.0.1, adaptive batching on against off, side by side.

Two bentos of the same artifact differ only in batching. For each, closed-loop clients at concurrency
1, 8 and 32 send single-item `encode_text` and `encode_image` requests. Every level is bounded in count
(--requests) and time (--seconds) and stops by itself. Besides throughput and latency, each level
reports the CPU time per answered request in each process (client, front service, encoder), and a
table measured in this process gives the model's own cost per item at batch 1 and at batch 32: the
most that batching can gain where the model, not HTTP, is the cost.

The client is aiohttp (httpx's pool capped the rate at concurrency 32 here), and this process freezes
its start-up objects out of garbage collection, as the service does: it holds torch, and a full
collection stalled every request in flight for ~0.3 s. The client shares the machine's cores with
the server, which caps absolute figures on a 2-core machine; compare the ratios.
Usage: python -m benchmarks.serving_load [--requests 2000] [--seconds 20] [--preset tiny|small|base]
       [--max-latency-ms N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import io
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import numpy as np
import psutil
from PIL import Image

from benchmarks.common import untrained_artifact
from components.runtime import configure_environment

LEVELS = (1, 8, 32)
TEXT = "two red circles on the left and a blue square at the top"


def payloads() -> dict[str, dict]:
    buffer = io.BytesIO()
    Image.new("RGB", (224, 224), (200, 40, 40)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    return {"encode_text": {"texts": [TEXT]}, "encode_image": {"images": [image]}}


def process_role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    return "encoder" if "alignops-encoder" in command else "front" if "alignops-embedding" in command else "supervisor"


def cpu_seconds(server_pid: int) -> Counter[str]:
    """CPU time so far of this process (the client) and of the server's processes, by role."""
    used: Counter[str] = Counter()
    root = psutil.Process(server_pid)
    for process in [psutil.Process(), root, *root.children(recursive=True)]:
        times = process.cpu_times()
        used["client" if process.pid == psutil.Process().pid else process_role(process)] += times.user + times.system
    return used


async def level(url: str, route: str, payload: dict, concurrency: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    remaining = requests

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            async with http.post(f"{url}/{route}", json=payload) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                errors[response.status] += 1

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    ok = len(latencies) - sum(errors.values())
    return {"rps": ok / elapsed, "p50": cuts[49] * 1e3, "p95": cuts[94] * 1e3, "p99": cuts[98] * 1e3,
            "n": len(latencies), "errors": sum(errors.values()), "by_status": dict(errors)}


def measured_level(server_pid: int, *args) -> dict:
    before = cpu_seconds(server_pid)
    result = asyncio.run(level(*args))
    used = cpu_seconds(server_pid) - before
    result["cpu_ms"] = {role: used[role] / max(result["n"], 1) * 1e3 for role in ("client", "front", "encoder")}
    return result


def server_levels(server, mode: str, levels: tuple[int, ...], requests: int, seconds: float
                  ) -> dict[tuple[str, str, int], dict]:
    """Every route at every concurrency level against one running bento, after a warm-up; keyed by
    (mode, route, concurrency)."""
    found = {}
    for route, payload in payloads().items():
        asyncio.run(level(server.url, route, payload, 4, 40, 10))  # warm-up
        for concurrency in levels:
            found[(mode, route, concurrency)] = measured_level(server.process.pid, server.url, route, payload,
                                                               concurrency, requests, seconds)
    return found


def model_ceiling(embedder, batch: int = 32, rounds: int = 5) -> dict[str, tuple[float, float]]:
    """Per-item milliseconds at batch 1 and at `batch`, best of `rounds`, model only (no HTTP): an
    `Embedder`'s, whichever runtime runs its towers."""
    pixels = embedder.transform(Image.new("RGB", (224, 224), (200, 40, 40))).numpy()[None]
    calls = {"encode_text": lambda n: embedder.encode_texts([TEXT] * n),
             "encode_image": lambda n: embedder.encode_pixels(np.repeat(pixels, n, axis=0))}
    ceiling = {}
    for route, call in calls.items():
        per_item = []
        for n in (1, batch):
            call(n)  # warm-up
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                call(n)
                timings.append((time.perf_counter() - started) / n * 1e3)
            per_item.append(min(timings))
        ceiling[route] = (per_item[0], per_item[1])
    return ceiling


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--preset", default="tiny", help="model size: serving cost, not quality, matters here")
    parser.add_argument("--max-latency-ms", type=int, help="batching deadline (raise it for large models on CPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        from serving.package import build_bento, import_model
        from serving.smoke import BentoServer
        from serving.standin import as_downloaded

        artifact = untrained_artifact(Path(tmp), args.preset)
        downloaded, provenance, trusted = as_downloaded(artifact, Path(tmp) / "registry")
        model_tag = import_model(downloaded, "alignops-bench", {}, provenance=provenance, trusted=trusted)
        from components.models.embedder import Embedder

        ceiling = model_ceiling(Embedder.load(artifact))
        gc.collect()
        gc.freeze()
        results: dict[tuple[str, str, int], dict] = {}
        for batching in (True, False):
            mode = "batching on" if batching else "batching off"
            with BentoServer(build_bento(model_tag, {}, options(batching, args.max_latency_ms))) as server:
                results |= server_levels(server, mode, LEVELS, args.requests, args.seconds)
    report(args.preset, results, ceiling)


def options(batching: bool, max_latency_ms: int | None):
    from serving.options import ServingOptions

    return ServingOptions(batching=batching, **({"max_latency_ms": max_latency_ms} if max_latency_ms else {}))


def report(preset: str, results: dict[tuple[str, str, int], dict], ceiling: dict[str, tuple[float, float]]) -> None:
    print(f"preset {preset}; ok/s counts successful answers only (a 503 is not throughput); "
          "cpu ms: CPU time per request in the client / front service / encoder processes")
    print(f"{'mode':13s} {'route':13s} {'conc':>4s} {'ok/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
          f"{'n':>5s} {'errors':>6s}  {'cpu ms client/front/encoder':>27s}")
    for (mode, route, concurrency), r in results.items():
        cpu = "/".join(f"{r['cpu_ms'][role]:.2f}" for role in ("client", "front", "encoder"))
        print(f"{mode:13s} {route:13s} {concurrency:4d} {r['rps']:8.1f} {r['p50']:8.1f} {r['p95']:8.1f} "
              f"{r['p99']:8.1f} {r['n']:5d} {r['errors']:6d}  {cpu:>27s} {r['by_status'] or ''}")
    for route, (single, batched) in ceiling.items():
        print(f"{route}: model only, {single:.2f} ms per item at batch 1, {batched:.2f} at batch 32 "
              f"(ceiling {single / batched:.2f}x)")
    for route in payloads():
        on, off = results[("batching on", route, 32)], results[("batching off", route, 32)]
        print(f"{route}: batching on / off at concurrency 32 = {on['rps'] / off['rps']:.2f}x throughput")


if __name__ == "__main__":
    main()
