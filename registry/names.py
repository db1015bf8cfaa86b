"""Names that become path segments or S3 keys: validated so none can traverse or nest."""

from __future__ import annotations

import re

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class InvalidName(ValueError):
    pass


def check_name(value: str, kind: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:60] + "…'"
        raise InvalidName(f"invalid {kind} {shown}: use 1-64 of a-z 0-9 . _ - , starting with a letter or digit")
    return value
