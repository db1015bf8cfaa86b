"""The one containment rule for every path that comes from data, an artifact, a record or a user.

A path is accepted only when it is relative, already normal (no `.` or `..` segment, no empty segment,
no backslash, no NUL or other control character) and bounded in length; and, where it is opened under a
folder, when it still lies inside that folder after symlinks are resolved. The check runs before any
byte is written, so a refused path leaves nothing behind. Names that become one path segment (run names)
full-match a pattern: a trailing newline is not a name.

The registry uses the same rule for the files a `version.json` names (it imports this module alone).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

MAX_PATH_CHARS = 1024
MAX_SEGMENT_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEGMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class UnsafePath(ValueError):
    """A path that is absolute, climbs out with `..`, is not normal, or leads out through a symlink."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"…' ({len(str(value))} characters)"


def relative_path(value: object, what: str = "path") -> PurePosixPath:
    """`value` as a relative POSIX path, or UnsafePath naming it and why."""
    if not isinstance(value, str) or not value:
        raise UnsafePath(f"{what} {_short(value)} is not a non-empty string")
    if len(value) > MAX_PATH_CHARS:
        raise UnsafePath(f"{what} {_short(value)} is longer than {MAX_PATH_CHARS} characters")
    if _CONTROL.search(value) or "\\" in value:
        raise UnsafePath(f"{what} {_short(value)} holds a control character or a backslash")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise UnsafePath(f"{what} {_short(value)} is absolute: give a path relative to its folder")
    segments = value.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise UnsafePath(f"{what} {_short(value)} is not a normal relative path (empty, `.` or `..` segment): "
                         "it must stay inside its folder")
    if any(len(s) > MAX_SEGMENT_CHARS for s in segments):
        raise UnsafePath(f"{what} {_short(value)} has a segment longer than {MAX_SEGMENT_CHARS} characters")
    return PurePosixPath(value)


def contained(root: Path, value: object, what: str = "path") -> Path:
    """`root / value` after the lexical check, refused when symlinks lead it out of `root`."""
    relative = relative_path(value, what)
    base = Path(root).resolve()
    path = base.joinpath(*relative.parts)
    if not path.resolve().is_relative_to(base):
        raise UnsafePath(f"{what} {_short(value)} leads out of {base} through a symlink")
    return path


def inside(root: Path, path: Path, what: str = "path") -> Path:
    """An already joined `path` (from a reader) checked to lie inside `root`, lexically and after symlinks."""
    base, path = Path(root).resolve(), Path(path)
    joined = path if path.is_absolute() else Path.cwd() / path
    try:
        relative = joined.relative_to(base)
    except ValueError:
        relative = None
    if relative is None:  # `root` may itself be reached through a symlink: compare unresolved forms too
        try:
            relative = joined.relative_to(Path(root).absolute())
        except ValueError:
            raise UnsafePath(f"{what} {_short(str(path))} lies outside {base}") from None
    return contained(base, relative.as_posix(), what)


def segment_name(value: object, what: str = "name") -> str:
    """A name that becomes one path segment: 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit."""
    if not isinstance(value, str) or not _SEGMENT_NAME.fullmatch(value) or ".." in value:
        raise UnsafePath(f"invalid {what} {_short(value)}: use 1-128 of A-Z a-z 0-9 . _ -, starting with a letter "
                         "or digit")
    return value


def without_local_paths(value: object) -> object:
    """A JSON-like value for a record that leaves this machine (a lineage): every absolute path in it becomes
    its last name, marked local (`base (local)`), since the path means nothing elsewhere and tells about this
    machine; URLs (s3://…) and relative names stay as they are."""
    if isinstance(value, str):
        return f"{PurePosixPath(value).name or '/'} (local)" if PurePosixPath(value).is_absolute() else value
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_local_paths(item) for item in value]
    return value
