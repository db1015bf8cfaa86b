"""Prefect's start-up and bookkeeping lines are off by default, and so is its retelling of a failure (the
command says it once, as its error line), and a flow's account of the verdict the command prints; a warning
or a flow's other words never are, and they are printed plain."""

import io
import logging
import logging.config
from copy import copy

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


@pytest.mark.parametrize(("message", "level"), [  # Prefect's retelling of a failure, then a flow's verdict
    ("Finished in state Failed('Flow run encountered an exception')", logging.INFO),
    ("Finished in state Crashed('Execution was aborted by an interrupt signal.')", logging.ERROR),
    ("Crash detected! Execution was aborted by an interrupt signal.", logging.ERROR),
    ("Encountered exception during execution: RegistryError('no model named x')", logging.ERROR),
    ("general:1 failed its gate; production stays where it was", logging.INFO),
    ("general:2 FAILED gate general on s_test/t2i_r1 (the verdict, rule by rule, is in its record)", logging.WARNING),
    ("general:2 passed gate general; alias candidate moved to it", logging.INFO),
    ("non-regression: policy 'general' recorded with general:2's verdict (sha256:…)", logging.INFO)])
def test_what_the_command_says_itself_is_dropped(message, level):
    assert not NoChatter().filter(record(message, level))


@pytest.mark.parametrize(("message", "level"), [
    ("coco: 395 rows in, 395 kept, 0 quarantined", logging.INFO),
    ("WiSE-FT mix 0.5 left out: its embeddings collapsed", logging.WARNING),
    ("Starting temporary server failed", logging.ERROR)])
def test_failures_warnings_and_the_flows_own_words_stay(message, level):
    assert NoChatter().filter(record(message, level))



def test_a_runs_own_lines_reach_the_terminal_plain_and_its_warnings_say_so(monkeypatch):
    """Through Prefect's own console handler, set up as the CLI sets it up: the message without Prefect's time,
    level and run name (the log file and the UI keep those), a warning marked as one, chatter gone."""
    from prefect.logging.configuration import ensure_logging_setup

    from flows.cli.errors import tidy_the_terminal

    ensure_logging_setup()
    handler = next(h for name in ("", "prefect", "prefect.task_runs") for h in logging.getLogger(name).handlers
                   if type(h).__name__ == "PrefectConsoleHandler")
    for attribute in ("formatter", "filters", "console"):  # all put back after the test
        monkeypatch.setattr(handler, attribute, copy(getattr(handler, attribute)))
    monkeypatch.setattr(logging.config, "dictConfig", logging.config.dictConfig)
    tidy_the_terminal(tracebacks=False, chatter=False)
    handler.console.file = io.StringIO()  # Prefect's console, its settings as they are
    for message, level in (("[train] step 5/300 (2%) · ETA 13m10s", logging.INFO),
                           ("WiSE-FT mix 0.5 left out: its embeddings collapsed", logging.WARNING),
                           ("Finished in state Completed()", logging.INFO)):
        handler.handle(logging.makeLogRecord({
            "name": "prefect.task_runs", "levelno": level, "levelname": logging.getLevelName(level), "msg": message,
            "task_run_name": "train_model-541", "task_run_id": None, "flow_run_id": None}))
    assert handler.console.file.getvalue().splitlines() == [
        "[train] step 5/300 (2%) · ETA 13m10s", "warning: WiSE-FT mix 0.5 left out: its embeddings collapsed"]
