"""Great Expectations' Data Docs made to render offline: its pages load their styles and scripts from
CDNs (Bootstrap, Font Awesome, jQuery, Vega) and its logos from S3, so on an air-gapped machine, or one
that should not call out when a report is opened, they render unstyled. Every remote stylesheet, script
and image is taken out, and a bundled stylesheet (`data_docs.css`) inlined, so a page depends on nothing
but its own folder."""

from __future__ import annotations

import re
from pathlib import Path

STYLES = Path(__file__).with_name("data_docs.css")
_REMOTE = r"""["']https?://[^"']*["']"""
_REMOTE_TAGS = [
    re.compile(rf"<link\b[^>]*href={_REMOTE}[^>]*>", re.IGNORECASE),
    re.compile(rf"<script\b[^>]*src={_REMOTE}[^>]*>\s*</script>", re.IGNORECASE | re.DOTALL),
    re.compile(rf"<img\b[^>]*src={_REMOTE}[^>]*>", re.IGNORECASE),
]
MARK = "<!-- alignops: offline styles -->"


def make_offline(docs_dir: Path) -> int:
    """Rewrite every page under `docs_dir` in place; returns the number of remote references removed."""
    style = f"{MARK}<style>\n{STYLES.read_text()}</style>"
    removed = 0
    for page in Path(docs_dir).rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        if MARK in html:  # made offline by an earlier run (GX keeps every validation's page)
            continue
        for pattern in _REMOTE_TAGS:
            html, count = pattern.subn("", html)
            removed += count
        html = re.sub(r"</head>", lambda _: style + "</head>", html, count=1, flags=re.IGNORECASE)
        page.write_text(html, encoding="utf-8")
    return removed
