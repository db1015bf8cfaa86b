"""The command-line reference as Markdown, generated from the Typer app itself: the documentation site's CLI page
is this text, so a command, an option or a default can never be missing from it or out of date."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

# Typer builds its commands on a click of its own, so they are handled by what they do (`list_commands`,
# `opts`), not by click's classes.
Command = Any


def commands(group: Command, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command under `group`, each group before its commands, in the order `--help` lists them."""
    context = group.context_class(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        yield (*prefix, name), command
        if hasattr(command, "list_commands"):
            yield from commands(command, (*prefix, name))


def root() -> Command:
    from flows.cli import app

    return typer.main.get_command(app)


def markdown() -> str:
    """One section per command: what it does, its usage line, and a table of its arguments and options."""
    group = root()
    parts = [_section(("alignops",), group)]
    parts += [_section(("alignops", *path), command) for path, command in commands(group)]
    return "\n".join(parts)


def _section(path: tuple[str, ...], command: Command) -> str:
    context = command.context_class(command, info_name=" ".join(path))
    level = "#" * min(len(path) + 1, 4)
    usage = " ".join((context.command_path, *command.collect_usage_pieces(context)))
    lines = [f"{level} `{' '.join(path)}`", "", " ".join((command.help or "").split()), "",
             f"```text\n{usage}\n```", ""]
    rows = [_row(param, context) for param in command.get_params(context)
            if not getattr(param, "hidden", False) and param.name != "help"]
    if rows:
        lines += ["| argument or option | help | default |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def _row(param: Command, context: Command) -> str:
    names = " / ".join(f"`{name}`" for name in (*param.opts, *param.secondary_opts)) \
        if param.param_type_name == "option" else f"`{param.name.upper()}`"
    help_text = getattr(param, "help", None) or ""
    default = param.get_default(context, call=False) if not param.required else None
    shown = "required" if param.required else ("" if default in (None, False, ()) else f"`{default}`")
    return f"| {names} | {_escaped(help_text)} | {shown} |"


def _escaped(text: str) -> str:
    """Text safe inside a Markdown table cell: no pipes or line breaks."""
    return " ".join(text.replace("|", "\\|").split())
