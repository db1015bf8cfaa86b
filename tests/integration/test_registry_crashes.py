"""An alias move and its audit record cannot be separated, and no partial version is ever visible: the
process is killed (SIGKILL) before each store write of register, promote and rollback, on the local store
and on S3 (moto); afterwards every alias value is explained by the audit log and a retry succeeds."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from registry.registry import Registry

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STEP = ROOT / "tests" / "crash" / "registry_step.py"
PASSING = {"policy": "t", "passed": True, "rules": []}
MOVES = {"alias_set", "promoted", "rolled_back"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifact")
    (folder / "tokenizer").mkdir()
    (folder / "model.safetensors").write_bytes(b"weights" * 1000)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    return folder


def fresh_registry(kind: str, tmp_path: Path, request) -> str:
    if kind == "local":
        return str(tmp_path / f"registry-{uuid.uuid4().hex[:8]}")
    return f"s3://{request.getfixturevalue('s3_bucket')}/crash-{uuid.uuid4().hex[:8]}"


def prepare(url: str, operation: str, artifact: Path) -> None:
    registry = Registry.from_url(url)
    if operation in ("promote", "rollback"):
        registry.register("m", artifact, gate=PASSING)
        registry.register("m", artifact, gate=PASSING)
        registry.promote("m", 1)
    if operation == "rollback":
        registry.promote("m", 2)


def step(url: str, operation: str, kill_at: int, artifact: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(STEP), url, operation, str(kill_at), str(artifact)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def check_consistent(url: str, tmp_path: Path) -> Registry:
    """No partial version is visible, and every alias value is explained by the audit log."""
    registry = Registry.from_url(url)  # a fresh process's view
    events = registry.events("m")
    versions = registry.list_versions("m")
    for record in versions:
        registry.download("m", record.version, tmp_path / f"check-{uuid.uuid4().hex[:6]}")  # every file, verified
    assert sorted(e.version for e in events if e.event == "registered") == [v.version for v in versions]
    for alias, record in registry.aliases("m").items():
        explaining = [e for e in events if e.event in MOVES and e.alias == alias and e.at == record.set_at]
        assert len(explaining) == 1 and explaining[0].version == record.version, (alias, record, events)
        moves = [e for e in events if e.event in MOVES and e.alias == alias]
        assert len(moves) == len(record.history) + 1 + 2 * sum(e.event == "rolled_back" for e in moves)
    return registry


def retry(registry: Registry, operation: str, artifact: Path) -> None:
    if operation == "register":
        registry.register("m", artifact, gate=PASSING)
    elif operation == "promote":
        registry.promote("m", 2)
        assert registry.get_alias("m", "production").version == 2
    elif registry.get_alias("m", "production").version == 2:  # the audit log says the rollback did not happen
        registry.rollback("m")
    assert operation != "rollback" or registry.get_alias("m", "production").version == 1


@pytest.mark.parametrize("kind", ["local", "s3"])
@pytest.mark.parametrize("operation", ["register", "promote", "rollback"])
def test_sigkill_before_every_write_leaves_a_consistent_registry(kind, operation, artifact, tmp_path, request):
    url = fresh_registry(kind, tmp_path, request)
    prepare(url, operation, artifact)
    clean = step(url, operation, 0, artifact)
    assert clean.returncode == 0, clean.stderr[-2000:]
    writes = int(clean.stdout.strip().splitlines()[-1])
    assert writes >= 2
    for kill_at in range(1, writes + 1):
        url = fresh_registry(kind, tmp_path, request)
        prepare(url, operation, artifact)
        killed = step(url, operation, kill_at, artifact)
        assert killed.returncode == -9, (kill_at, killed.stderr[-2000:])
        registry = check_consistent(url, tmp_path)
        retry(registry, operation, artifact)
        after = check_consistent(url, tmp_path)
        if operation == "promote":  # the retry did not move it twice
            promoted = [e for e in after.events("m") if e.event == "promoted" and e.version == 2]
            assert len(promoted) == 1, (kill_at, promoted)
