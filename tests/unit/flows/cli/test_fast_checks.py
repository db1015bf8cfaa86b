"""A mistyped argument is answered before the heavy libraries load: no torch, no Prefect, no flow."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[4]

PROBE = """
import sys
from typer.testing import CliRunner
from flows.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
heavy = sorted(m for m in ("torch", "prefect", "lightning", "bentoml") if m in sys.modules)
print(result.exit_code, heavy, result.output.replace(chr(10), " "))
"""


@pytest.mark.parametrize(("args", "message"), [
    (["finetune", "dermatology", "x"], "unknown preset 'dermatology'"),
    (["finetune", "general", "x", "--base", "Bad Name"], "invalid model name 'Bad Name'"),
    (["train", "x", "--name", "../up"], "invalid model name '../up'"),
    (["train", "x", "--run-name", "../../out"], "invalid run name '../../out'"),
    (["evaluate", "m:1", "x", "--split", "dev"], "--split 'dev': use one of"),
    (["evaluate", "Not A Ref", "x"], "invalid model name 'Not A Ref'"),
    (["data", "curate", "x", "--model", "Not A Ref"], "invalid model name 'Not A Ref'"),
    (["data", "curate", "x", "--model", "m:1", "--min-score", "0.2", "--keep-fraction", "0.5"], "not both"),
    (["data", "curate", "x", "--model", "m:1", "--keep-fraction", "1.5"], "less than or equal to 1"),
    (["data", "curate", "x", "--model", "m:1", "--name", "../out"], "--name '../out' is not a normal relative"),
])
def test_bad_arguments_fail_before_heavy_imports(args, message):
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    code, output = done.stdout.split(" ", 1)
    assert code == "1" and output.startswith("[] ") and message in output, done.stdout + done.stderr


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["registry", "--help"], ["train", "--bogus"],
                                  ["data", "validate"], ["registry", "promote", "Bad Name", "1"],
                                  ["finetune", "dermatology", "x"]])
def test_help_and_argument_errors_write_nothing(args, tmp_path):
    """The state directory is prepared when a command starts, after its arguments parse, and an argument the
    command itself refuses leaves nothing behind either (no state folders, no log)."""
    env = {key: value for key, value in os.environ.items() if key != "ALIGNOPS_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", "from flows.cli import app; app()", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1, 2), done.stderr[-500:]  # 1: refused by the command, 2: a usage error
    assert list(tmp_path.iterdir()) == []
