"""Digests: of content that records carry whole (a gate policy inside a verdict), as sha256 of its canonical
JSON, so the same content gives the same digest wherever it is computed and any edit shows; and of files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_digest(content: Any) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read a megabyte at a time (a checkpoint may not fit in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
