"""How the command line fails: one bounded line on the terminal (credentials masked) and exit code 1; the
traceback goes to the state directory's `logs/cli.log`, or to the terminal with `--debug`."""

from __future__ import annotations

import functools
import logging
import logging.config
import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
import typer

from components.runtime import Settings, alignops_home, configure_environment
from core.secrets import redact
from flows.cli.signals import detach_prefect_server, unwind_on_sigterm
from infra.stack import StackError, use_running_stack
from infra.workspace import VersioningError
from registry.names import InvalidName
from registry.registry import RegistryError
from registry.signing import SignatureInvalid

# Errors that describe a problem with the user's input or state; shown as one line, not a traceback. Our
# ValueErrors (ManifestError, pydantic's ValidationError, config checks) all say what to change.
USER_ERRORS = (ValueError, VersioningError, RegistryError, InvalidName, FileNotFoundError, FileExistsError,
               StackError, SignatureInvalid)
MAX_ERROR_CHARS = 400
DEBUG = {"on": False, "verbose": False}  # set by `alignops --debug` and `--verbose`


def error_log() -> Path:
    return Settings(home=alignops_home()).cli_log


def log_traceback(error: BaseException | tuple) -> Path:
    """Append the traceback (credentials masked) to the CLI's log file; return its path."""
    info = error if isinstance(error, tuple) else (type(error), error, error.__traceback__)
    path = error_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        log.write(f"--- {datetime.now(UTC).isoformat()} alignops {redact(' '.join(sys.argv[1:]))[:2000]}\n")
        log.write(redact("".join(traceback.format_exception(*info))))
    return path


def one_line(message: str) -> str:
    """A message as one bounded line, credentials masked (a 1 MB file name stays readable)."""
    text = " ".join(redact(message).split())
    return text if len(text) <= MAX_ERROR_CHARS else f"{text[:MAX_ERROR_CHARS]}… ({len(text)} characters)"


class OneLine(logging.Formatter):
    """A console formatter that prints a record's message alone and sends its traceback to the log file."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info:
            return self.inner.format(record)
        log_traceback(record.exc_info)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return one_line(self.inner.format(record)) + f" (traceback in {error_log()})"
        finally:
            record.exc_info, record.exc_text = saved


class Plain(logging.Formatter):
    """A run's lines as a person reads them: the message, without Prefect's time, level and run name (the
    log file and the Prefect UI keep those); a warning says that it is one."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"warning: {message}" if record.levelno == logging.WARNING else message


# Prefect's and GX's lines about their own machinery, which say nothing about the user's work; --verbose
# brings them back.
_CHATTER = re.compile(r"(Starting|Stopping) temporary server|See https://docs\.prefect\.io|Beginning (sub)?flow run|"
                      r"Finished in state (Completed|Cached)|Created (flow|task) run|View at |"
                      r"Created temporary directory")
# Prefect's own report of a failure, once per task and flow it passed through: the command says the failure
# once, as its `error:` or `interrupted:` line (with the traceback in the log), so these would repeat it.
_RETOLD = re.compile(r"Encountered exception during execution|Finished in state (Failed|Crashed)|Crash detected!")
# A flow's own account of its verdict and promotion, for the Prefect UI: a command that ran the flow prints
# the verdict's table and the move itself.
_SAID_BY_THE_COMMAND = re.compile(r"\S+ (FAILED|passed) gate |\S+ failed its gate; |non-regression: ")


class NoChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        said = record.getMessage()
        return not (_RETOLD.match(said) or _SAID_BY_THE_COMMAND.match(said)
                    or record.levelno <= logging.INFO and _CHATTER.match(said))


def tidy_the_terminal(tracebacks: bool, chatter: bool) -> None:
    """What Prefect's console handlers print: without `tracebacks`, a failed flow's traceback goes to the log
    file and the terminal gets its message alone; without `chatter`, start-up and bookkeeping lines go and
    the rest are printed plain."""
    def tidy_console_handlers() -> None:
        for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.server"):
            for handler in logging.getLogger(name).handlers:
                if type(handler).__name__ != "PrefectConsoleHandler":
                    continue
                if not chatter and not isinstance(handler.formatter, Plain | OneLine):
                    handler.setFormatter(Plain())
                if not tracebacks and not isinstance(handler.formatter, OneLine):
                    handler.setFormatter(OneLine(handler.formatter))
                if not chatter and not any(isinstance(f, NoChatter) for f in handler.filters):
                    handler.addFilter(NoChatter())

    if not chatter:  # the libraries' own start-up notes ("GPU available: False", GX's temporary folders)
        for library in ("great_expectations", "lightning.pytorch.utilities.rank_zero"):
            logging.getLogger(library).setLevel(logging.WARNING)
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
    # Prefect sets its handlers up when a command first imports it (importing it here would cost every
    # command ~1.3 s): tidy them as soon as it does.
    configure = logging.config.dictConfig

    def configure_then_tidy(config: dict) -> None:
        configure(config)
        tidy_console_handlers()

    logging.config.dictConfig = configure_then_tidy
    tidy_console_handlers()


def fail(message: str) -> None:
    from rich.text import Text

    from flows.steps.output import console, line

    console.print(line(Text("error:", style="red"), " ", one_line(message)), soft_wrap=True)
    raise typer.Exit(1)


def interrupted(interrupt: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C or SIGTERM: one line, then out within seconds. What the command started has been stopped by the
    `finally` blocks the interrupt unwound through; Prefect's temporary server is stopped here; the exit
    handlers are skipped, because they would spend minutes flushing logs and events to that stopped server."""
    from rich.text import Text

    from flows.steps.output import console, line

    said = str(interrupt) if type(interrupt) is not KeyboardInterrupt else ""  # a plain Ctrl-C carries nothing
    console.print(line(Text("interrupted:", style="yellow"), " ",
                       one_line(said or "stopped before the command finished; re-run it to start again")),
                  soft_wrap=True)
    stop_temporary_servers()
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(130)


def stop_temporary_servers() -> None:
    """Prefect's temporary API servers this process started (normally stopped by an exit handler)."""
    server_module = sys.modules.get("prefect.server.api.server")
    for server in list(getattr(getattr(server_module, "SubprocessASGIServer", None), "_instances", {}).values()):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - already gone: Ctrl-C reached its process group too
            pass


def prepare_the_process() -> None:
    """What every command needs once its arguments are parsed: the state directory and the tools' homes in it,
    the local stack when one runs, signals that stop what the command starts, a quiet terminal."""
    unwind_on_sigterm()  # so what a command started (Prefect's temporary server, bentoml serve) stops with it
    detach_prefect_server()  # so Ctrl-C leaves it running until the command has recorded how it ended
    use_running_stack(configure_environment())  # commands talk to the local stack while it runs
    # bentoml build runs `uv`, installed beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    tidy_the_terminal(tracebacks=DEBUG["on"], chatter=DEBUG["on"] or DEBUG["verbose"])


def removed_if_untouched(home: Path) -> bool:
    """Remove a state directory this command created and wrote no file into (only the tools' empty homes)."""
    if any(path.is_file() or path.is_symlink() for path in home.rglob("*")):
        return False
    shutil.rmtree(home, ignore_errors=True)
    return True


def user_errors(command: Callable) -> Callable:
    """Every failure is one line on the terminal and exit code 1; the traceback goes to the log file (or
    to the terminal with --debug). Usage errors stay typer's (exit code 2)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        fresh = not alignops_home().exists()
        try:
            prepare_the_process()
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except KeyboardInterrupt as interrupt:
            if DEBUG["on"]:
                raise
            interrupted(interrupt)
        except USER_ERRORS as error:
            if DEBUG["on"]:
                raise
            if not (fresh and removed_if_untouched(alignops_home())):  # an argument refused: nothing written
                log_traceback(error)
            fail(str(error))
        except Exception as error:  # noqa: BLE001 - anything else is still one line, with where to look
            if DEBUG["on"]:
                raise
            fail(f"{type(error).__name__}: {error} (the traceback is in {log_traceback(error)}; "
                 "`alignops --debug …` shows it here)")

    return wrapper
