"""Sectioning of free-text reports (radiology): `FINDINGS:` / `IMPRESSION:` style headings."""

from __future__ import annotations

import re

_HEADING = re.compile(r"^\s*([A-Z][A-Z /&]{2,40}):", re.MULTILINE)


def report_sections(text: str) -> dict[str, str]:
    """Section name (lower case) -> its text with white space folded; text before any heading is `preamble`."""
    sections, matches = {}, list(_HEADING.finditer(text))
    if matches and matches[0].start() > 0:
        sections["preamble"] = text[:matches[0].start()]
    elif not matches:
        sections["preamble"] = text
    for this, following in zip(matches, [*matches[1:], None], strict=True):
        body = text[this.end():following.start() if following else len(text)]
        sections[this.group(1).strip().lower()] = body
    return {name: " ".join(body.split()) for name, body in sections.items() if body.strip()}


def report_caption(text: str, sections: tuple[str, ...] = ("findings", "impression")) -> str | None:
    """The requested sections joined in order; None when the report has none of them."""
    found = report_sections(text)
    parts = [found[name] for name in sections if name in found]
    return " ".join(parts) if parts else None
