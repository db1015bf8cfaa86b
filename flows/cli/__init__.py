"""The `alignops` command line: thin command groups, each command a flow or a registry call.

    alignops demo | train | finetune             flows/cli/runs.py
    alignops data generate|import|shard|add|get|validate|curate|poison    flows/cli/data.py
    alignops registry list|show|diff|history|import-hf|project|promote|rollback|archive    flows/cli/models.py
    alignops gallery build|list|upgrade|rollback|history  flows/cli/galleries.py
    alignops audit backdoor                      flows/cli/audits.py
    alignops package | serve                     flows/cli/serving.py
    alignops up | down | status | deploy         flows/cli/stack.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from components.runtime import configure_environment
from flows.cli import audits, data, galleries, models, runs, serving, stack
from flows.cli.errors import DEBUG, tidy_the_terminal
from flows.cli.signals import unwind_on_sigterm

app = typer.Typer(help="alignops: governed lifecycle for image-text models.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="registry")
app.add_typer(galleries.app, name="gallery")
app.add_typer(audits.app, name="audit")
for group in (runs, serving, stack):
    for command in group.COMMANDS:
        app.command()(command)


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on the terminal (they go to "
                                                               "$ALIGNOPS_HOME/logs/cli.log otherwise), and "
                                                               "everything --verbose shows")] = False,
         verbose: Annotated[bool, typer.Option("--verbose", help="show Prefect's start-up and bookkeeping "
                                                                 "lines")] = False,
         ) -> None:
    from infra.stack import use_running_stack

    DEBUG["on"] = debug
    unwind_on_sigterm()  # so what a command started (Prefect's temporary server, bentoml serve) stops with it
    use_running_stack(configure_environment())  # commands talk to the local stack while it runs
    # bentoml build runs `uv`, installed beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    tidy_the_terminal(tracebacks=debug, chatter=debug or verbose)
