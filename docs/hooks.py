"""MkDocs hooks: pages generated from the code when the site is built, never written by hand."""

from __future__ import annotations

PLACEHOLDER = "<!-- generated: cli -->"


def on_page_markdown(markdown: str, page, **_) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    from flows.cli.reference import markdown as cli_reference

    return markdown.replace(PLACEHOLDER, cli_reference())
