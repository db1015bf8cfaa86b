"""Names that become path segments or S3 keys: validated so none can traverse or nest."""

from __future__ import annotations

import re
from typing import NamedTuple

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class InvalidName(ValueError):
    pass


def check_name(value: str, kind: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:60] + "…'"
        raise InvalidName(f"invalid {kind} {shown}: use 1-64 of a-z 0-9 . _ - , starting with a letter or digit")
    return value


_REF = re.compile(r"^(?P<name>[^@:]+)(?:@(?P<alias>[^@:]+)|:(?P<version>\d+))?$")


class ModelRef(NamedTuple):
    name: str
    alias: str | None = None
    version: int | None = None


def parse_ref(ref: str) -> ModelRef:
    """`name@alias`, `name:version` or `name`, its names checked: what the CLI checks before a flow starts."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if not match:
        raise InvalidName(f"bad model reference {ref!r}: use NAME@ALIAS, NAME:VERSION or NAME")
    alias = check_name(match["alias"], "alias") if match["alias"] else None
    return ModelRef(check_name(match["name"], "model name"), alias,
                    int(match["version"]) if match["version"] else None)
