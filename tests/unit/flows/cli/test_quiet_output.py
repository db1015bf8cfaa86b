"""Prefect's start-up and bookkeeping lines are off by default; a failure, a warning or a flow's own words
never are."""

import logging

import pytest

from flows.cli.errors import NoChatter


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prefect.flow_runs", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("message", [
    "Starting temporary server on http://127.0.0.1:8710\nSee https://docs.prefect.io/v3/concepts/server",
    "Stopping temporary server on http://127.0.0.1:8710", "Beginning flow run 'rampant-weasel' for flow 'train'",
    "Finished in state Completed()", "Created temporary directory '/tmp/x' for ephemeral docs site"])
def test_machinery_lines_are_dropped(message):
    assert not NoChatter().filter(record(message))


@pytest.mark.parametrize(("message", "level"), [
    ("Finished in state Failed('Flow run encountered an exception')", logging.INFO),
    ("coco: 395 rows in, 395 kept, 0 quarantined", logging.INFO),
    ("Starting temporary server failed", logging.ERROR)])
def test_failures_warnings_and_the_flows_own_words_stay(message, level):
    assert NoChatter().filter(record(message, level))
