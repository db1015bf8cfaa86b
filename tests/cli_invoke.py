"""The `alignops` command line run in-process, wide enough that tables do not wrap."""

from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "220"})
