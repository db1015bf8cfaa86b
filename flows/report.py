"""What people read: rich tables in the terminal and pictures inlined into Prefect artifacts."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


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
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def verdict_mark(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[red]FAIL[/red]"
