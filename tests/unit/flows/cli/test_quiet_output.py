"""Prefect's start-up and bookkeeping lines are off by default, and so is its retelling of a failure (the
command says it once, as its error line); a warning or a flow's own words never are."""

import logging

import pytest

from flows.cli.errors import NoChatter


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prefect.flow_runs", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("message", [
    "Starting temporary server on http://127.0.0.1:8710\nSee https://docs.prefect.io/v3/concepts/server",
    "Stopping temporary server on http://127.0.0.1:8710", "Beginning flow run 'rampant-weasel' for flow 'train'",
    "Finished in state Completed()", "Finished in state Cached(type=COMPLETED)",
    "Created temporary directory '/tmp/x' for ephemeral docs site"])
def test_machinery_lines_are_dropped(message):
    assert not NoChatter().filter(record(message))


@pytest.mark.parametrize(("message", "level"), [
    ("Finished in state Failed('Flow run encountered an exception')", logging.INFO),
    ("Finished in state Crashed('Execution was aborted by an interrupt signal.')", logging.ERROR),
    ("Crash detected! Execution was aborted by an interrupt signal.", logging.ERROR),
    ("Encountered exception during execution: RegistryError('no model named x')", logging.ERROR)])
def test_prefects_retelling_of_a_failure_is_dropped(message, level):
    assert not NoChatter().filter(record(message, level))


@pytest.mark.parametrize(("message", "level"), [
    ("coco: 395 rows in, 395 kept, 0 quarantined", logging.INFO),
    ("general:1 failed its gate; production stays where it was", logging.INFO),
    ("Starting temporary server failed", logging.ERROR)])
def test_failures_warnings_and_the_flows_own_words_stay(message, level):
    assert NoChatter().filter(record(message, level))
