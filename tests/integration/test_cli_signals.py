"""Stopping a command by its PID (SIGTERM, or SIGINT as Ctrl-C sends) stops everything it started: Prefect's
temporary API server under a training run, and `bentoml serve` with its workers (the port stops answering)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from serving.smoke import free_port

ROOT = Path(__file__).resolve().parents[2]
ALIGNOPS = str(Path(sys.executable).parent / "alignops")
pytestmark = pytest.mark.slow


def started(home: Path, *args: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environment |= {"ALIGNOPS_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    return subprocess.Popen([ALIGNOPS, *args], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_until(condition, timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the command ended before {what}:\n{process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.5)


def stopped_with_everything_it_started(process: subprocess.Popen, signum: int) -> list[psutil.Process]:
    """Signal the command's PID alone (not its group); return its descendants still alive afterwards."""
    descendants = psutil.Process(process.pid).children(recursive=True)
    assert descendants, "the command started nothing to leave behind"
    os.kill(process.pid, signum)
    process.wait(timeout=90)
    gone, alive = psutil.wait_procs(descendants, timeout=30)
    for leftover in alive:  # do not leave them to the next test, whatever the assertion says
        leftover.kill()
    return alive


def serves_prefect(process: subprocess.Popen) -> bool:
    return any("prefect" in command_line(child) for child in psutil.Process(process.pid).children(recursive=True))


def command_line(child: psutil.Process) -> str:
    """A child's command line; empty for one that ended (or is a zombie) between listing and reading, as the
    command's short-lived helpers (git, a shell) do."""
    try:
        return " ".join(child.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_a_training_run_stops_prefects_temporary_server(tiny_dataset, tmp_path, signum):
    (tmp_path / "long.yaml").write_text("data: {batch_size: 16}\nlogging: {wandb: false}\n")
    process = started(tmp_path / "home", "train", str(tiny_dataset), "--steps", "100000", "--config",
                      str(tmp_path / "long.yaml"))
    wait_until(lambda: serves_prefect(process), 120, "Prefect server", process)
    time.sleep(5)  # well into the flow
    assert stopped_with_everything_it_started(process, signum) == []
    assert process.returncode != 0


def test_stopping_serve_stops_bentoml_and_frees_the_port(tiny_artifact, tiny_dataset, tmp_path):
    from serving.package import build_bento, import_model
    from serving.standin import as_downloaded

    downloaded, provenance, trusted = as_downloaded(tiny_artifact, tmp_path / "registry")
    bento = build_bento(import_model(downloaded, "alignops-signals", {"registry-version": "0"}, provenance=provenance,
                                     trusted=trusted), {"registry-model": "signals"})
    port = free_port()
    process = started(tmp_path / "home", "serve", bento, "--port", str(port))

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 180, "answer on /readyz", process)
    assert stopped_with_everything_it_started(process, signal.SIGTERM) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)


def test_ctrl_c_during_training_is_one_line_a_checkpoint_and_a_prompt_exit(tiny_dataset, tmp_path):
    """Ctrl-C reaches the whole foreground group (Prefect's temporary server too): the command still ends at
    once, with one line saying where training stopped and how to resume, and a checkpoint written there."""
    import re
    import threading

    (tmp_path / "long.yaml").write_text("data: {batch_size: 16}\n"
                                        "logging: {wandb: false, checkpoint_every_n_steps: 100000}\n")
    home = tmp_path / "home"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environment |= {"ALIGNOPS_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    process = subprocess.Popen([ALIGNOPS, "train", str(tiny_dataset), "--steps", "100000", "--config",
                                str(tmp_path / "long.yaml")], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # a terminal's group
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    wait_until(lambda: any("[train] step" in line for line in lines), 300, "training progress", process)
    descendants = psutil.Process(process.pid).children(recursive=True)
    interrupted_at = time.time()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)  # minutes before: flushing logs and events to the server Ctrl-C had stopped
    reader.join(timeout=10)
    assert process.returncode == 130, "".join(lines)[-3000:]
    said = [line for line in lines if line.startswith("interrupted:")]
    assert len(said) == 1 and "Traceback" not in "".join(lines), "".join(lines)[-3000:]
    step = int(re.search(r"training interrupted at step (\d+) of 100000; a checkpoint was written there: re-run the "
                         r"same command to resume from step (\d+)", said[0]).group(1))
    assert step > 0
    (checkpoint,) = home.glob("runs/*/checkpoints/last.ckpt")
    assert checkpoint.stat().st_mtime >= interrupted_at
    gone, alive = psutil.wait_procs(descendants, timeout=30)
    for leftover in alive:
        leftover.kill()
    assert alive == []
