"""Stopping a command stops what it started. Python ends on SIGTERM without running `finally` blocks or
exit handlers, which would leave Prefect's temporary API server (stopped by an exit handler) and a
`bentoml serve` tree running with the port still answering. SIGTERM (and SIGHUP, a closed terminal) is made
to raise KeyboardInterrupt, as SIGINT does, so all unwind; a child started in a session of its own is stopped
as a whole group.

Ctrl-C reaches the terminal's whole foreground group. Prefect's temporary server would die of it at once,
and the interrupted command would then spend minutes retrying to record its crash and flush its logs to it;
so that server starts in a session of its own, and the command stops it when it is done."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import signal
import subprocess
import sys

GRACE_S = 20.0  # how long a stopped child may take to drain before it is killed


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def unwind_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


PREFECT_SERVER_MODULE = "prefect.server.api.server"


class _SessionPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("start_new_session", True)
        super().__init__(*args, **kwargs)


class _SubprocessInSession:
    """The `subprocess` module as Prefect's server module sees it: each process it starts in a session of its
    own."""

    def __getattr__(self, name: str):
        return _SessionPopen if name == "Popen" else getattr(subprocess, name)


class _DetachPrefectServer(importlib.abc.MetaPathFinder):
    """When (and only when) Prefect imports its temporary server's module, that module starts its processes in
    sessions of their own; importing it up front would cost every command 3 s."""

    def find_spec(self, name, path=None, target=None):
        if name != PREFECT_SERVER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module) -> None:
            load(module)
            module.subprocess = _SubprocessInSession()
        spec.loader.exec_module = exec_module
        return spec


def detach_prefect_server() -> None:
    if PREFECT_SERVER_MODULE not in sys.modules and not any(
            isinstance(finder, _DetachPrefectServer) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DetachPrefectServer())


def run_as_group(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run `command` (in `env`, default this process's) in a process group of its own and wait; on SIGINT or
    SIGTERM to this process, pass SIGTERM to the whole group, wait out its grace period, kill what is left,
    and exit 130."""
    process = subprocess.Popen(command, start_new_session=True, env=env)
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
