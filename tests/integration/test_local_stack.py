"""The local stack for real: `alignops up` starts a Prefect server, the moto S3 server and a process worker
on 127.0.0.1; deployments are triggered through the REST API; the automation packages a promoted version;
the UI's deployments page is rendered by headless Chromium; `alignops down` leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.steps.platform import Platform
from infra.stack import Stack, load_stack, marked_processes
from registry.local_s3 import free_port
from registry.registry import Registry

pytestmark = pytest.mark.slow

ALIGNOPS = str(Path(sys.executable).parent / "alignops")
FLOWS = {"validate_data", "pretrain", "finetune", "evaluate", "promote", "package", "lifecycle"}
SCREENSHOTS = Path(os.environ.get("ALIGNOPS_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output"))


def stack_env(home: Path) -> dict[str, str]:
    """This session's environment without anything that points at other services."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "AWS_", "ALIGNOPS_REGISTRY", "ALIGNOPS_DVC", "BENTOML_", "WANDB_"))}
    return env | {"ALIGNOPS_HOME": str(home)}


def alignops(home: Path, *args: str, timeout: float = 300, **settings: str) -> subprocess.CompletedProcess:
    done = subprocess.run([ALIGNOPS, *args], env=stack_env(home) | settings, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"alignops {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def start(home: Path, prefect_port: int, s3_port: int) -> Stack:
    alignops(home, "up", "--prefect-port", str(prefect_port), "--s3-port", str(s3_port))
    return load_stack(home)


def stop(home: Path, stack: Stack) -> None:
    alignops(home, "down")
    assert not any(s.alive() for s in stack.services)
    assert marked_processes(stack.id) == [], "processes started by the stack outlived `alignops down`"
    assert not list((home / "stack").glob("*.pid"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_artifact):
    home = tmp_path_factory.mktemp("stack-home")
    Registry.local(home / "registry").register("made-before-up", tiny_artifact)  # what a demo left behind
    ports = (free_port(), free_port())
    running = start(home, *ports)
    yield running
    stop(home, load_stack(home) or running)


def api(stack: Stack, method: str, route: str, **kwargs):
    """A REST call; a 503 is retried as Prefect's own client does (the server answers 503 for what a client
    can retry, e.g. SQLite busy on a loaded machine, and rolls the request back)."""
    for attempt in range(6):
        response = httpx.request(method, f"{stack.prefect_api_url}/{route}", timeout=30, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(2 ** attempt)
    response.raise_for_status()
    return response.json()


def deployments(stack: Stack) -> dict[str, dict]:
    flows = {f["id"]: f["name"] for f in api(stack, "POST", "flows/filter", json={})}
    return {f"{flows[d['flow_id']]}/{d['name']}": d for d in api(stack, "POST", "deployments/filter", json={})}


def eventually(probe, timeout_s: float = 120):
    """`probe()`'s first truthy answer, polled every second; its last answer at the timeout."""
    deadline = time.monotonic() + timeout_s
    while not (answer := probe()) and time.monotonic() < deadline:
        time.sleep(1)
    return answer


def wait_for_run(stack: Stack, run_id: str, timeout_s: float = 400) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = api(stack, "GET", f"flow_runs/{run_id}")
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(1)
    raise TimeoutError(f"flow run {run_id} did not finish within {timeout_s:.0f} s")


def registry(stack: Stack):
    """The stack's registry, signing with the suite's key as the platform does (the stack's worker trusts
    it); its boto3 client takes endpoint and credentials when it is made."""
    before = dict(os.environ)
    os.environ.update(stack.client_environment())
    try:
        return Registry.from_url(stack.registry, Platform.from_env().trust())
    finally:
        os.environ.clear()
        os.environ.update(before)


def test_every_flow_is_deployed_with_a_typed_form_and_the_schedules_create_runs(stack):
    deployed = deployments(stack)
    assert {name.split("/")[0] for name in deployed} >= FLOWS
    lifecycle = deployed["lifecycle/lifecycle"]["parameter_openapi_schema"]
    assert "LifecycleConfig" in lifecycle["definitions"]  # pydantic models: the UI renders a form
    assert "TrainConfig" in lifecycle["definitions"]
    scheduled = {name: d for name, d in deployed.items() if d["schedules"]}
    assert set(scheduled) == {"reevaluate/weekly-production", "finetune_on_change/nightly-medical",
                              "finetune_on_change/nightly-person", "finetune_on_change/nightly-remote_sensing"}
    for name, deployment in scheduled.items():
        runs = eventually(lambda d=deployment: api(stack, "POST", "flow_runs/filter", json={  # the scheduler's loop
            "flow_runs": {"deployment_id": {"any_": [d["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}}}))
        assert runs, f"the schedule of {name} created no runs"
        hours = {run["expected_start_time"][11:16] for run in runs}
        assert hours == ({"03:00"} if "weekly" in name else {"02:00"}), (name, hours)


def test_the_first_up_brings_the_local_registry_along(stack):
    seeded = registry(stack).get_version("made-before-up", 1)
    assert registry(stack).download("made-before-up", 1, stack.home / "seeded-download").is_dir()
    assert seeded.files == Registry.local(stack.home / "registry").get_version("made-before-up", 1).files


def test_status_shows_what_runs(stack):
    out = alignops(stack.home, "status").stdout
    for service in ("s3", "prefect-server", "worker"):
        assert any(line.split()[1:2] == [service] and "running" in line for line in out.splitlines()), out
    assert "ONLINE" in out and "deployments" in out


def test_promote_through_the_api_moves_production_and_the_automation_packages_it(stack, tiny_artifact):
    store = registry(stack)
    record = store.register("general", tiny_artifact, metrics={"synthetic_test/mean_recall": 0.5},
                            gate={"passed": True, "policy": "stack-test", "rules": []}, reason="stack test")
    promote = deployments(stack)["promote/promote"]
    run = api(stack, "POST", f"deployments/{promote['id']}/create_flow_run",
              json={"parameters": {"name": "general", "version": record.version, "reason": "through the API"}})
    finished = wait_for_run(stack, run["id"])
    assert finished["state_type"] == "COMPLETED", finished["state"]
    artifacts = api(stack, "POST", "artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    assert [a["key"] for a in artifacts] == ["registry-change"]
    assert f"-> version {record.version}" in artifacts[0]["data"]
    assert store.get_alias("general", "production").version == record.version

    package = {"flow_runs": {"deployment_id": {"any_": [deployments(stack)["package/package"]["id"]]}}}
    packaged = eventually(lambda: next((  # the automation creates the run
        r for r in api(stack, "POST", "flow_runs/filter", json=package)
        if r["parameters"] == {"model_ref": f"general:{record.version}"}), None))
    assert packaged is not None, "no package run followed the promotion"
    assert wait_for_run(stack, packaged["id"])["state_type"] == "COMPLETED"
    events = [e for e in store.events("general") if e.event == "packaged" and e.version == record.version]
    assert len(events) == 1 and events[0].details["smoke_passed"] is True
    bento = api(stack, "POST", "artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [packaged["id"]]}}})
    assert events[0].details["bento"] in bento[0]["data"]

    # A mover that packages by itself (the lifecycle) turns the automation off for its move.
    second = store.register("general", tiny_artifact, metrics={"synthetic_test/mean_recall": 0.5},
                            gate={"passed": True, "policy": "stack-test", "rules": []}, reason="stack test")
    run = api(stack, "POST", f"deployments/{promote['id']}/create_flow_run", json={"parameters": {
        "name": "general", "version": second.version, "reason": "packaged by the caller", "package_on_move": False}})
    assert wait_for_run(stack, run["id"])["state_type"] == "COMPLETED"
    time.sleep(10)  # the first move's package run was created within ~1 s (benchmarks/stack_latency.py)
    runs = api(stack, "POST", "flow_runs/filter", json=package)
    assert [r["parameters"] for r in runs] == [{"model_ref": f"general:{record.version}"}]


def test_the_ui_lists_the_deployments(stack):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (the README's install step installs it)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={stack.home / 'chromium'}", "--window-size=1400,1000",
             "--virtual-time-budget=20000"]
    url = f"{stack.ui_url}/deployments"
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    names = sorted(name.split("/")[1] for name in deployments(stack))
    assert f"{len(names)} Deployments" in dom
    for name in names[:10]:  # the first page, A to Z
        assert f">{name}<" in dom, f"{name} is not on the UI's deployments page"
    screenshot = SCREENSHOTS / "prefect-ui-deployments.png"
    subprocess.run([chromium, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120,
                   check=True)
    assert screenshot.stat().st_size > 20_000


def test_the_same_deployments_go_to_a_kubernetes_pool(stack):
    template = json.loads((Path(__file__).parents[2] / "infra" / "kubernetes" / "work-pool.json").read_text())
    pool = api(stack, "POST", "work_pools/", json={"name": "alignops-k8s", "type": "kubernetes",
                                                    "base_job_template": template})
    assert pool["base_job_template"]["variables"]["properties"]["image"]["default"]
    out = alignops(stack.home, "deploy", "--pool", "alignops-k8s", "--image", "registry.example/alignops:1").stdout
    assert "on work pool alignops-k8s" in out
    on_k8s = [d for d in api(stack, "POST", "deployments/filter", json={}) if d["work_pool_name"] == "alignops-k8s"]
    assert {d["entrypoint"] for d in on_k8s} == {d["entrypoint"] for d in deployments(stack).values()}
    assert all(d["job_variables"] == {"image": "registry.example/alignops:1"} for d in on_k8s)
    missing = subprocess.run([ALIGNOPS, "deploy", "--pool", "no-such-pool", "--image", "x"], env=stack_env(stack.home),
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "prefect work-pool create no-such-pool --type kubernetes" in missing.stdout


def test_with_an_api_and_a_registry_configured_up_starts_only_a_worker(stack, tmp_path):
    home = tmp_path / "second-home"
    settings = {"PREFECT_API_URL": stack.prefect_api_url, "ALIGNOPS_REGISTRY": str(tmp_path / "registry")}
    alignops(home, "up", "--pool", "second-pool", **settings)
    second = load_stack(home)
    assert [s.name for s in second.services] == ["worker"] and second.ui_url is None and second.s3_endpoint is None
    workers = api(stack, "POST", "work_pools/second-pool/workers/filter", json={})
    assert [w["status"] for w in workers] == ["ONLINE"]
    stop(home, second)
    assert all(s.alive() for s in stack.services)  # the first stack is untouched


def test_down_then_up_keeps_registry_deployments_and_automation(stack, tiny_artifact):
    kept = registry(stack).register("kept-over-restart", tiny_artifact, reason="stack test")
    registry(stack).set_alias("kept-over-restart", "staging", kept.version, reason="stack test")
    stop(stack.home, stack)
    restarted = start(stack.home, int(stack.ui_url.rsplit(":", 1)[1]), int(stack.s3_endpoint.rsplit(":", 1)[1]))
    alias = registry(restarted).get_alias("kept-over-restart", "staging")  # the S3 snapshot came back
    assert alias is not None and alias.version == kept.version
    automations = api(restarted, "POST", "automations/filter", json={})
    # one of each (re-deploying made no copy): packaging on a production move, a continual phase per new version
    assert sorted(a["name"] for a in automations) == ["new version of continual-data/dataset",
                                                      "package new production versions"]
    assert {name.split("/")[0] for name in deployments(restarted)} >= FLOWS
