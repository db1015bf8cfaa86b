"""The local stack: a Prefect server (API + UI), the moto S3 server for the registry and the DVC remote,
and a process worker, all on 127.0.0.1, started detached and recorded in PID files so that `down` stops
exactly what `up` started.

Each part is started only where nothing is configured instead: `PREFECT_API_URL` points at a remote
Prefect API, `ALIGNOPS_REGISTRY` at real S3 (with `ALIGNOPS_DVC_REMOTE` beside it).

Every process the stack starts, and everything they start (the worker's flow runs, a smoke test's
`bentoml serve`), inherits `ALIGNOPS_STACK=<id>`, which is how `down` finds what outlived its parent.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
from pydantic import BaseModel

from components.runtime import ENV_DEFAULTS, Settings

STACK_MARKER = "ALIGNOPS_STACK"
LOCAL_POOL = "alignops-local"  # the process work pool the stack's worker polls
BUCKET = "alignops"
LOCAL_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "alignops-local", "AWS_SECRET_ACCESS_KEY": "alignops-local",
                        "AWS_DEFAULT_REGION": "us-east-1"}


class StackError(RuntimeError):
    pass


class Service(BaseModel):
    name: str
    pid: int
    command: list[str]
    log: str
    address: str | None = None

    def alive(self) -> bool:
        """Running, and still the process we started (a recycled PID runs another command line)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            return False
        return [part.decode(errors="replace") for part in cmdline] == self.command


class Stack(BaseModel):
    """What `up` started and the settings every client of the stack uses (saved as `stack/stack.json`)."""
    id: str
    home: Path
    prefect_api_url: str
    ui_url: str | None
    s3_endpoint: str | None
    registry: str
    dvc_remote: str
    pool: str
    services: list[Service] = []

    def client_environment(self) -> dict[str, str]:
        """What a client of this stack needs; the Prefect credential comes from this process's environment
        (`PREFECT_SERVER_API_AUTH_STRING`), never from the stack's file."""
        env = {"PREFECT_API_URL": self.prefect_api_url, "ALIGNOPS_REGISTRY": self.registry,
               "ALIGNOPS_DVC_REMOTE": self.dvc_remote}
        if auth := prefect_auth():
            env["PREFECT_API_AUTH_STRING"] = auth
        if self.s3_endpoint:
            env |= {"AWS_ENDPOINT_URL_S3": self.s3_endpoint, **LOCAL_S3_CREDENTIALS}
        return env


def stack_dir(home: Path) -> Path:
    return Settings(home=home).stack


def load_stack(home: Path) -> Stack | None:
    path = stack_dir(home) / "stack.json"
    return Stack.model_validate_json(path.read_text()) if path.is_file() else None


def save_stack(stack: Stack) -> None:
    directory = stack_dir(stack.home)
    (directory / "stack.json").write_text(stack.model_dump_json(indent=2))
    for service in stack.services:
        (directory / f"{service.name}.pid").write_text(f"{service.pid}\n")


def use_running_stack(home: Path) -> Stack | None:
    """Point this process at the stack running in `home`, if one is; values set by the user win."""
    stack = load_stack(home)
    if stack is None or not any(s.alive() for s in stack.services):
        return None
    for key, value in stack.client_environment().items():
        os.environ.setdefault(key, value)
    return stack


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_exposure(host: str, has_credential: bool, what: str, remedy: str) -> None:
    """Listening beyond this machine is refused without a credential callers must present."""
    if host not in LOOPBACK and not has_credential:
        raise StackError(f"{what} would listen on {host} with no credential, answering anyone who can reach it: "
                         f"{remedy}, or keep to 127.0.0.1")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_until(ready: Callable[[], bool], what: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.is_file() else "(no log)"
    raise StackError(f"{what} was not ready within {timeout_s:.0f} s; the end of {log}:\n{tail}")


def start_service(stack: Stack, name: str, command: list[str], env: dict[str, str],
                  address: str | None = None) -> Service:
    log = stack_dir(stack.home) / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True, cwd=stack.home)
    service = Service(name=name, pid=process.pid, command=command, log=str(log), address=address)
    stack.services.append(service)
    save_stack(stack)  # recorded at once, so a failed `up` can still be taken down
    return service


def base_environment(home: Path, stack_id: str) -> dict[str, str]:
    return {**os.environ, **ENV_DEFAULTS, "ALIGNOPS_HOME": str(home), STACK_MARKER: stack_id,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false"}


def local_s3(stack: Stack):
    return boto3.client("s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1",
                        aws_access_key_id=LOCAL_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=LOCAL_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def start_s3(stack: Stack, env: dict[str, str], port: int) -> None:
    """moto keeps objects in memory: the bucket is loaded from the snapshot the last `down` saved. The first
    time, it is seeded from the state directory's local registry and DVC remote (same layouts as on S3), so
    what `alignops demo` made before the stack existed is still there."""
    service = start_service(stack, "s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env, stack.s3_endpoint)
    wait_until(lambda: httpx.get(f"{stack.s3_endpoint}/moto-api/", timeout=2).status_code == 200, "the S3 server",
               Path(service.log), 60)
    s3 = local_s3(stack)
    s3.create_bucket(Bucket=BUCKET)
    snapshot = stack_dir(stack.home) / "s3-snapshot"
    settings = Settings(home=stack.home)
    sources = {snapshot: ""} if snapshot.is_dir() else {settings.local_registry: "registry/",
                                                         settings.local_dvc_remote: "dvc/"}
    for folder, prefix in sources.items():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            s3.upload_file(str(path), BUCKET, prefix + path.relative_to(folder).as_posix())


def save_s3(stack: Stack) -> int:
    """Copy the bucket to `stack/s3-snapshot` (replacing the last snapshot); returns the object count."""
    s3, snapshot = local_s3(stack), stack_dir(stack.home) / "s3-snapshot"
    fresh = snapshot.with_name("s3-snapshot.new")
    shutil.rmtree(fresh, ignore_errors=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            target = fresh / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, item["Key"], str(target))
            count += 1
    shutil.rmtree(snapshot, ignore_errors=True)
    fresh.mkdir(parents=True, exist_ok=True)
    fresh.rename(snapshot)  # the old snapshot is replaced only once the new one is whole
    return count


def prefect_auth() -> str | None:
    """The Prefect API's credential (`user:password`), from the environment only."""
    return os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or None


def prefect_headers() -> dict[str, str]:
    auth = prefect_auth()
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}


def start_prefect(stack: Stack, env: dict[str, str], port: int, host: str) -> None:
    """Prefect's server on `host`; with `PREFECT_SERVER_API_AUTH_STRING` set, its API answers only clients
    presenting it (the worker and the CLI get it as `PREFECT_API_AUTH_STRING`)."""
    api = f"http://127.0.0.1:{port}/api"
    env = env | {"PREFECT_UI_API_URL": api, "PREFECT_API_URL": api}
    service = start_service(stack, "prefect-server", [
        sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)], env,
        f"http://{host}:{port}")
    wait_until(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, "the Prefect server",
               Path(service.log), 120)


def worker_online(api: str, pool: str) -> bool:
    workers = httpx.post(f"{api}/work_pools/{pool}/workers/filter", json={}, headers=prefect_headers(), timeout=5)
    return workers.status_code == 200 and any(w["status"] == "ONLINE" for w in workers.json())


def plan(home: Path, prefect_port: int, s3_port: int, pool: str) -> Stack:
    """The stack to start: local servers for whatever is not configured in the environment."""
    settings = Settings(home=home)
    api, registry = os.environ.get("PREFECT_API_URL"), settings.remote_registry
    for port, needed in ((prefect_port, not api), (s3_port, not registry)):
        if needed and not port_free(port):
            raise StackError(f"port {port} on 127.0.0.1 is taken: pick another with --prefect-port / --s3-port")
    return Stack(
        id=uuid.uuid4().hex[:12], home=home, pool=pool,
        prefect_api_url=api or f"http://127.0.0.1:{prefect_port}/api",
        ui_url=None if api else f"http://127.0.0.1:{prefect_port}",
        s3_endpoint=None if registry else f"http://127.0.0.1:{s3_port}",
        registry=registry or f"s3://{BUCKET}/registry",
        dvc_remote=settings.dvc_remote_url if registry else f"s3://{BUCKET}/dvc")


def up(home: Path, prefect_port: int = 4200, s3_port: int = 9555, pool: str = LOCAL_POOL,
       host: str = "127.0.0.1") -> Stack:
    """Start what the environment does not name. Prefect's server listens on `host`: beyond 127.0.0.1 only with
    `PREFECT_SERVER_API_AUTH_STRING` set (the S3 server stays on 127.0.0.1)."""
    check_exposure(host, prefect_auth() is not None, "the Prefect server",
                   "set PREFECT_SERVER_API_AUTH_STRING=user:password (from a secret store) in the environment")
    running = load_stack(home)
    if running and any(s.alive() for s in running.services):
        raise StackError(f"a stack already runs from {home} (UI {running.ui_url}); `alignops down` stops it")
    stack = plan(home, prefect_port, s3_port, pool)
    stack_dir(home).mkdir(parents=True, exist_ok=True)
    env = base_environment(home, stack.id)
    try:
        if stack.s3_endpoint:
            start_s3(stack, env, s3_port)
        if stack.ui_url:
            start_prefect(stack, env, prefect_port, host)
        env |= stack.client_environment()
        register = subprocess.run([str(Path(sys.executable).parent / "alignops"), "deploy", "--pool", pool],
                                  env=env, capture_output=True, text=True)
        if register.returncode != 0:
            raise StackError(f"registering the deployments failed:\n{register.stdout}{register.stderr}")
        # polling a server on the same machine every 2 s (Prefect's default: 10 s) costs nothing
        worker = start_service(stack, "worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                                                 "--type", "process", "--name", f"{pool}-worker"],
                               env | {"PREFECT_WORKER_QUERY_SECONDS": "2"})
        wait_until(lambda: worker_online(stack.prefect_api_url, pool), "the worker", Path(worker.log), 90)
    except BaseException:
        down(home)
        raise
    return stack


def stop_process_group(pid: int, grace_s: float = 15) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        reap(pid)
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)


def reap(pid: int) -> None:
    """Collect the exit status of a child of this process (a test's own `up`), so it does not linger."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def marked_processes(stack_id: str) -> list[int]:
    """PIDs of live processes that inherited this stack's marker."""
    marker = f"{STACK_MARKER}={stack_id}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def down(home: Path) -> list[str]:
    """Stop what `up` started (worker first, then the servers), then anything that inherited the stack's
    marker and outlived them (a flow run in its own session); returns what was done."""
    stack = load_stack(home)
    if stack is None:
        return []
    stopped = []
    for service in reversed(stack.services):  # the S3 server last: its bucket is saved once nothing writes
        if service.name == "s3" and service.alive():
            stopped.append(f"saved {save_s3(stack)} S3 objects to {stack_dir(home) / 's3-snapshot'}")
        if service.alive():
            stop_process_group(service.pid)
            stopped.append(f"stopped {service.name} (pid {service.pid})")
        reap(service.pid)
        (stack_dir(home) / f"{service.name}.pid").unlink(missing_ok=True)
    for pid in marked_processes(stack.id):
        try:
            os.kill(pid, signal.SIGKILL)
            stopped.append(f"stopped left-over process {pid}")
        except ProcessLookupError:
            pass
        reap(pid)
    (stack_dir(home) / "stack.json").unlink()
    return stopped


def describe_api(stack: Stack) -> str:
    """What the stack's Prefect API holds: deployments, workers, the latest and the next runs."""
    api = stack.prefect_api_url

    def runs(states: dict, sort: str) -> list[dict]:
        return httpx.post(f"{api}/flow_runs/filter", timeout=5, headers=prefect_headers(),
                          json={"flow_runs": {"state": {"type": states}}, "sort": sort, "limit": 5}).json()

    headers = prefect_headers()
    try:
        deployments = httpx.post(f"{api}/deployments/filter", json={}, headers=headers, timeout=5).json()
        workers = httpx.post(f"{api}/work_pools/{stack.pool}/workers/filter", json={}, headers=headers,
                             timeout=5).json()
        latest = runs({"not_any_": ["SCHEDULED"]}, "START_TIME_DESC")
        upcoming = runs({"any_": ["SCHEDULED"]}, "EXPECTED_START_TIME_ASC")
    except (httpx.HTTPError, ValueError) as error:
        return f"Prefect API {api} does not answer ({error})"
    names = {d["id"]: d["name"] for d in deployments}
    lines = [f"Prefect API {api}: {len(deployments)} deployments; workers on {stack.pool}: "
             + (", ".join(f"{w['name']} {w['status']}" for w in workers) or "none")]
    lines += [f"  latest: {r['name']} ({names.get(r['deployment_id'], 'run by hand')}) {r['state_type']}"
              f" {(r['start_time'] or r['expected_start_time'] or '')[:16]}" for r in latest]
    lines += [f"  next: {names.get(r['deployment_id'], '?')} at {r['expected_start_time'][:16]}" for r in upcoming]
    return "\n".join(lines)
