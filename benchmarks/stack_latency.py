"""The local stack's operating costs, in one run on one stack:

1. `alignops up` and `alignops down` wall time.
2. The same `promote` flow run in this process (against the stack's Prefect API) vs through its deployment
   (API request -> worker picks it up -> a fresh flow process -> completed), interleaved --repeats times:
   what going through the worker costs on top of the flow itself.
3. The automation: from a `production` move to the `package` run it creates, and to that run's end.
Usage: python -m benchmarks.stack_latency [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import untrained_artifact
from registry.local_s3 import free_port

ALIGNOPS = str(Path(sys.executable).parent / "alignops")


def timed_command(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([ALIGNOPS, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run_through_deployment(api: str, deployment_id: str, parameters: dict) -> tuple[float, float]:
    """(seconds from the request to completion, of which waiting for the worker to start it)."""
    started = time.perf_counter()
    run = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters},
                     timeout=30).json()
    pending_until = None
    while True:
        state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=30).json()["state_type"]
        if state == "RUNNING" and pending_until is None:
            pending_until = time.perf_counter()
        if state in ("COMPLETED", "FAILED", "CRASHED"):
            assert state == "COMPLETED", state
            return time.perf_counter() - started, (pending_until or time.perf_counter()) - started
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_", "ALIGNOPS_"))}
        env["ALIGNOPS_HOME"] = str(home)
        up_s = timed_command(["up", "--prefect-port", str(free_port()), "--s3-port", str(free_port())], env)
        try:
            measure(home, Path(tmp), args.repeats, up_s)
        finally:
            print(f"alignops down: {timed_command(['down'], env):.1f} s")


def measure(home: Path, scratch: Path, repeats: int, up_s: float) -> None:
    from infra.stack import load_stack

    stack = load_stack(home)
    os.environ.update(stack.client_environment() | {"ALIGNOPS_HOME": str(home)})
    from flows.promote import promote  # prefect is imported after PREFECT_API_URL points at the stack
    from registry.registry import Registry

    registry = Registry.from_url(stack.registry)
    artifact = untrained_artifact(scratch)
    versions = [registry.register("bench", artifact, gate={"passed": True, "policy": "bench", "rules": []}).version
                for _ in range(2)]
    api = stack.prefect_api_url
    deployment = httpx.get(f"{api}/deployments/name/promote/promote", timeout=30).json()["id"]
    in_process, through, pickup = [], [], []
    for i in range(repeats):
        version = versions[i % 2]
        started = time.perf_counter()
        promote("bench", version, alias="in-process")
        in_process.append(time.perf_counter() - started)
        total, waited = run_through_deployment(api, deployment, {"name": "bench", "version": version,
                                                                 "alias": "through-worker"})
        through.append(total)
        pickup.append(waited)
    created_s, packaged_s = automation_latency(api, version=versions[0])
    median = statistics.median
    print(f"alignops up: {up_s:.1f} s (S3 server, Prefect server, 11 deployments + automation, worker online)")
    print(f"promote in-process: median {median(in_process):.2f} s over {repeats}")
    print(f"promote through the deployment: median {median(through):.2f} s "
          f"({median(through) / median(in_process):.1f}x; of which waiting for the worker {median(pickup):.2f} s)")
    print(f"automation: production moved -> package run created {created_s:.1f} s -> packaged (bento built and "
          f"smoke-tested) {packaged_s:.1f} s")


def automation_latency(api: str, version: int) -> tuple[float, float]:
    from flows.promote import promote

    package = httpx.get(f"{api}/deployments/name/package/package", timeout=30).json()["id"]
    started = time.perf_counter()
    promote("bench", version, alias="production")
    query = {"flow_runs": {"deployment_id": {"any_": [package]}}}
    while not (runs := httpx.post(f"{api}/flow_runs/filter", json=query, timeout=30).json()):
        time.sleep(0.1)
    created = time.perf_counter() - started
    while httpx.get(f"{api}/flow_runs/{runs[0]['id']}", timeout=30).json()["state_type"] not in (
            "COMPLETED", "FAILED", "CRASHED"):
        time.sleep(0.2)
    return created, time.perf_counter() - started


if __name__ == "__main__":
    main()
