"""Load test of a served bento on 127.0.0.1, adaptive batching on against off, side by side.

Two bentos of the same artifact differ only in batching. For each, closed-loop clients at concurrency
1, 8 and 32 send single-item `encode_text` and `encode_image` requests. Every level is bounded in count
(--requests) and time (--seconds) and stops by itself. The client shares the machine's cores with the
server, which caps absolute figures on a 2-core machine; compare the ratio.
Usage: python -m benchmarks.serving_load [--requests 300] [--seconds 60] [--preset tiny|base] [--max-latency-ms N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image

from benchmarks.common import untrained_artifact
from components.runtime import configure_environment

LEVELS = (1, 8, 32)


def payloads() -> dict[str, dict]:
    buffer = io.BytesIO()
    Image.new("RGB", (224, 224), (200, 40, 40)).save(buffer, format="PNG")
    return {"encode_text": {"texts": ["two red circles on the left and a blue square at the top"]},
            "encode_image": {"images": [base64.b64encode(buffer.getvalue()).decode()]}}


async def level(url: str, route: str, payload: dict, concurrency: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    remaining = requests

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            response = await http.post(f"{url}/{route}", json=payload)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors[response.status_code] += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    ok = len(latencies) - sum(errors.values())
    return {"rps": ok / elapsed, "p50": cuts[49] * 1e3, "p95": cuts[94] * 1e3, "p99": cuts[98] * 1e3,
            "n": len(latencies), "errors": sum(errors.values()), "by_status": dict(errors)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--preset", default="tiny", help="model size: serving cost, not quality, matters here")
    parser.add_argument("--max-latency-ms", type=int, help="batching deadline (raise it for large models on CPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        from serving.package import build_bento, import_model
        from serving.smoke import BentoServer

        artifact = untrained_artifact(Path(tmp), args.preset)
        model_tag = import_model(artifact, "alignops-bench", {})
        results: dict[tuple[str, str, int], dict] = {}
        for batching in (True, False):
            mode = "batching on" if batching else "batching off"
            with BentoServer(build_bento(model_tag, {}, batching, args.max_latency_ms)) as server:
                for route, payload in payloads().items():
                    asyncio.run(level(server.url, route, payload, 4, 20, 10))  # warm-up
                    for concurrency in LEVELS:
                        results[(mode, route, concurrency)] = asyncio.run(
                            level(server.url, route, payload, concurrency, args.requests, args.seconds))
    print(f"preset {args.preset}; req/s counts successful answers only (a 503 is not throughput)")
    print(f"{'mode':13s} {'route':13s} {'conc':>4s} {'ok/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
          f"{'n':>5s} {'errors':>6s}")
    for (mode, route, concurrency), r in results.items():
        print(f"{mode:13s} {route:13s} {concurrency:4d} {r['rps']:8.1f} {r['p50']:8.1f} {r['p95']:8.1f} "
              f"{r['p99']:8.1f} {r['n']:5d} {r['errors']:6d} {r['by_status'] or ''}")
    for route in payloads():
        on, off = results[("batching on", route, 32)], results[("batching off", route, 32)]
        print(f"{route}: batching on / off at concurrency 32 = {on['rps'] / off['rps']:.2f}x throughput")


if __name__ == "__main__":
    main()
