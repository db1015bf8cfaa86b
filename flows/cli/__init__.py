"""The `alignops` command line: thin command groups, each command a flow or a registry call.

    alignops demo | train | finetune | evaluate  flows/cli/runs.py
    alignops continual                           flows/cli/streams.py
    alignops data generate|import|shard|add|get|validate|curate|poison    flows/cli/data.py
    alignops registry list|show|diff|history|project|approve|promote|rollback|archive    flows/cli/registry.py
    alignops registry import-hf|import-openclip|export  flows/cli/interop.py
    alignops keys create|list                    flows/cli/keys.py
    alignops gallery build|list|upgrade|rollback|history  flows/cli/galleries.py
    alignops audit backdoor                      flows/cli/audits.py
    alignops package | serve                     flows/cli/serving.py
    alignops up | down | status | deploy | doctor  flows/cli/stack.py
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli import audits, data, galleries, keys, registry, runs, serving, stack, streams
from flows.cli import interop as interop  # its commands join the registry group when it is imported
from flows.cli.errors import DEBUG

app = typer.Typer(help="alignops: governed lifecycle for image-text models.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
app.add_typer(data.app, name="data")
app.add_typer(registry.app, name="registry")  # with interop's commands (import-hf, import-openclip, export)
app.add_typer(galleries.app, name="gallery")
app.add_typer(audits.app, name="audit")
app.add_typer(keys.app, name="keys")
for group in (runs, streams, serving, stack):
    for command in group.COMMANDS:
        app.command()(command)


def show_version(asked: bool) -> None:
    if asked:
        import platform
        from importlib import metadata

        typer.echo(f"alignops {metadata.version('alignops')} (Python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                               help="print the version and exit")] = False,
         debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on the terminal (they go to "
                                                               "$ALIGNOPS_HOME/logs/cli.log otherwise), and "
                                                               "everything --verbose shows")] = False,
         verbose: Annotated[bool, typer.Option("--verbose", help="show Prefect's start-up and bookkeeping "
                                                                 "lines")] = False,
         ) -> None:
    # Only flags here: the state directory is prepared when a command starts (`user_errors`), after its
    # arguments parsed, so `--help` and an argument error write nothing.
    DEBUG["on"], DEBUG["verbose"] = debug, verbose
