"""Key-value stores for the registry, with the conditional writes it needs for atomic updates.

The interface mirrors S3: `if_none_match=True` creates a key only if absent (S3 `IfNoneMatch: *`),
`if_match=etag` replaces it only if unchanged since read (S3 `IfMatch`). The local store gets the same
guarantees from `os.link` (atomic create-if-absent) and an `O_EXCL` lock around read-compare-rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Protocol


class KeyNotFound(KeyError):
    pass


class PreconditionFailed(RuntimeError):
    """A conditional write lost a race: the key exists, or changed since it was read."""


class Store(Protocol):
    url: str  # what `Registry.from_url` opens again
    def put_bytes(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str: ...
    def get_bytes(self, key: str) -> tuple[bytes, str]: ...
    def put_file(self, key: str, source: Path) -> None: ...
    def get_file(self, key: str, target: Path) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def exists(self, key: str) -> bool: ...


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """A directory; keys are relative paths. Safe across processes on one filesystem."""

    LOCK_TIMEOUT_S = 30.0
    STALE_LOCK_S = 60.0

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if key.startswith("/") or not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def _temp(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")

    def put_bytes(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        path = self._path(key)
        temp = self._temp(path)
        temp.write_bytes(data)
        try:
            if if_none_match:
                try:
                    os.link(temp, path)  # atomic, and fails if the key exists
                except FileExistsError:
                    raise PreconditionFailed(f"{key} already exists") from None
            elif if_match is not None:
                with self._locked(path):
                    current = path.read_bytes() if path.exists() else None
                    if current is None or _etag(current) != if_match:
                        raise PreconditionFailed(f"{key} changed since it was read")
                    os.replace(temp, path)
            else:
                os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return _etag(data)

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(key) from None
        return data, _etag(data)

    def put_file(self, key: str, source: Path) -> None:
        path = self._path(key)
        temp = self._temp(path)
        shutil.copyfile(source, temp)
        os.replace(temp, path)

    def get_file(self, key: str, target: Path) -> None:
        try:
            shutil.copyfile(self._path(key), target)
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-") and not p.name.endswith(".lock"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _locked(self, path: Path) -> _FileLock:
        return _FileLock(path.with_name(path.name + ".lock"), self.LOCK_TIMEOUT_S, self.STALE_LOCK_S)


class _FileLock:
    """An exclusive lock file (`O_EXCL`); a lock older than `stale_s` is taken to be from a dead process."""

    def __init__(self, path: Path, timeout_s: float, stale_s: float):
        self.path, self.timeout_s, self.stale_s = path, timeout_s, stale_s

    def __enter__(self) -> _FileLock:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return self
            except FileExistsError:
                try:
                    if time.time() - self.path.stat().st_mtime > self.stale_s:
                        self.path.unlink(missing_ok=True)
                        continue
                except FileNotFoundError:
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not lock {self.path} within {self.timeout_s:.0f} s") from None
                time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)
