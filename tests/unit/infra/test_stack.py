"""Local-stack bookkeeping without starting servers: PID records guard against recycled PIDs, a taken port
is refused before anything starts, clients use a running stack's settings unless the user set their own."""

import os
import socket
import sys
from pathlib import Path

import pytest

from infra.stack import Service, Stack, StackError, down, save_stack, up, use_running_stack


def own_command() -> list[str]:
    return [p.decode() for p in Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[:-1]]


def test_a_recycled_pid_is_not_ours():
    assert Service(name="x", pid=os.getpid(), command=own_command(), log="-").alive()
    assert not Service(name="x", pid=os.getpid(), command=[sys.executable, "-m", "moto.server"], log="-").alive()
    assert not Service(name="x", pid=2**22 + 1, command=own_command(), log="-").alive()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("ALIGNOPS_REGISTRY", str(tmp_path / "registry"))  # no S3 server wanted
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StackError, match="--prefect-port"):
            up(tmp_path, prefect_port=taken.getsockname()[1])
    assert not (tmp_path / "stack" / "stack.json").exists()
    assert down(tmp_path) == []


def stack_in(home: Path, services: list[Service]) -> Stack:
    (home / "stack").mkdir(parents=True)
    stack = Stack(id="t", home=home, prefect_api_url="http://127.0.0.1:1/api", ui_url=None,
                  s3_endpoint="http://127.0.0.1:2", registry="s3://alignops/registry", dvc_remote="s3://alignops/dvc",
                  pool="p", services=services)
    save_stack(stack)
    return stack


@pytest.fixture
def scratch_environment(monkeypatch):
    """`use_running_stack` writes os.environ: give it a copy, so nothing leaks into later tests."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PREFECT_API_URL", "ALIGNOPS_REGISTRY", "ALIGNOPS_DVC_REMOTE", "AWS_ENDPOINT_URL_S3")}
    monkeypatch.setattr(os, "environ", environment)
    return environment


def test_clients_follow_a_running_stack_but_user_settings_win(tmp_path, monkeypatch, scratch_environment):
    monkeypatch.setenv("ALIGNOPS_REGISTRY", "s3://mine/registry")
    stack_in(tmp_path, [Service(name="worker", pid=os.getpid(), command=own_command(), log="-")])
    assert use_running_stack(tmp_path) is not None
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:1/api"
    assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:2"
    assert os.environ["ALIGNOPS_REGISTRY"] == "s3://mine/registry"


def test_a_dead_stack_is_ignored_and_cleaned_up_by_down(tmp_path, scratch_environment):
    stack_in(tmp_path, [Service(name="worker", pid=2**22 + 1, command=["gone"], log="-")])
    assert use_running_stack(tmp_path) is None and "PREFECT_API_URL" not in os.environ
    assert down(tmp_path) == []
    assert not list((tmp_path / "stack").iterdir())
