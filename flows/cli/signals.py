"""Stopping a command stops what it started. Python ends on SIGTERM without running `finally` blocks or
exit handlers, which would leave Prefect's temporary API server (stopped by an exit handler) and a
`bentoml serve` tree running with the port still answering. SIGTERM is made to raise KeyboardInterrupt,
as SIGINT does, so both unwind; a child started in a session of its own is stopped as a whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

GRACE_S = 20.0  # how long a stopped child may take to drain before it is killed


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def unwind_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _interrupt)


def run_as_group(command: list[str]) -> int:
    """Run `command` in a process group of its own and wait; on SIGINT or SIGTERM to this process, pass
    SIGTERM to the whole group, wait out its grace period, kill what is left, and exit 130."""
    process = subprocess.Popen(command, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop_group(process)
        return 130


def stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):  # workers the leader left behind, or a leader that hung
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
