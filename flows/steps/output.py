"""What people read: rich tables in the terminal and pictures inlined into Prefect artifacts.

What is printed comes from data, records and users, so it is printed as text: the console parses no markup
(a path holding `[/bold]` or `[link=…]` is shown as it is), every control character is shown escaped (`\x1b`:
no escape sequence reaches the terminal), credentials are masked, and style is given only to words of our
own, as `Text`."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from core.secrets import redact

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline, C1 included


PIPED_WIDTH = 160


class PlainConsole(Console):
    """A console that prints every string it is given as text: no markup, control characters escaped."""

    def print(self, *objects, **options) -> None:  # noqa: A003 - rich's name
        super().print(*(line(o) if isinstance(o, str) else o for o in objects), **options)

    @property
    def size(self) -> ConsoleDimensions:
        """A log file or a pipe has no width: rich's 80 columns there cut names to `synthetic_t…`, so it gets
        `PIPED_WIDTH` (and table cells fold, never cut); a terminal keeps its own width, and COLUMNS wins."""
        size, columns = super().size, os.environ.get("COLUMNS", "")
        if columns.isdigit():  # read now: rich reads it once, when the console is made
            return ConsoleDimensions(int(columns), size.height)
        return size if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


console = PlainConsole(markup=False, highlight=False)


def printable(value: object) -> str:
    """`value` as text: credentials masked (URL user-info, secret variables) and control characters escaped
    (`\x1b`, `\x07`…)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", redact(str(value)))


def line(*parts: object) -> Text:
    """One printed line from parts: a `Text` keeps its style, anything else is printed as text."""
    return Text.assemble(*(part if isinstance(part, Text) else printable(part) for part in parts))


def bold(value: object) -> Text:
    return Text(printable(value), style="bold")


def echo(message: object, **options) -> None:
    """`typer.echo` for a line that may hold data: control characters escaped."""
    typer.echo(printable(message), **options)


def inline_png(path: Path, alt: str) -> str:
    """Markdown for a PNG embedded as a data URI, so the picture travels with the artifact."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(Path(path).read_bytes()).decode()})"


def markdown_table(rows: Sequence[dict]) -> str:
    if not rows:
        return "_(none)_"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A table whose title and cells are printed as text (a `Text` cell keeps its style)."""
    table = Table(title=line(title), title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(printable(column), overflow="fold")
    for row in rows:
        table.add_row(*(line(v) for v in row))
    return table


def verdict_mark(passed: bool) -> Text:
    return Text("pass", style="green") if passed else Text("FAIL", style="red")
