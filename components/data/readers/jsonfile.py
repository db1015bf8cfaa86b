"""JSON annotation files as users have them: invalid UTF-8 becomes U+FFFD in the affected strings, which
validation then reports row by row, instead of one decode error failing the whole file."""

from __future__ import annotations

import json
from pathlib import Path

from components.data.manifest import ManifestError


def load_json(path: Path) -> object:
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path} is not valid JSON: {error}") from None
