"""The model registry: immutable versions, movable aliases, gated promotion and an audit log.

It stores directories and records and knows nothing of models. Layout, identical on every store:

    models/<name>/versions/<n>/<artifact files>   + version.json (sha256 of every file; written last)
    models/<name>/aliases/<alias>.json            pointer, moved by compare-and-swap
    models/<name>/events/<time>-<id>.json         append-only audit log
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from registry.names import check_name
from registry.records import AliasRecord, Event, FileEntry, VersionRecord, utcnow
from registry.store import KeyNotFound, LocalStore, PreconditionFailed, Store

_VERSION_JSON = re.compile(r"^models/[^/]+/versions/(\d+)/version\.json$")
_REF = re.compile(r"^(?P<name>[^@:]+)(?:@(?P<alias>[^@:]+)|:(?P<version>\d+))?$")


class RegistryError(RuntimeError):
    pass


class PromotionRefused(RegistryError):
    pass


class ChecksumMismatch(RegistryError):
    pass


def current_actor() -> str:
    return os.environ.get("ALIGNOPS_ACTOR") or getpass.getuser()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Registry:
    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def local(cls, root: Path) -> Registry:
        return cls(LocalStore(root))

    # ---- versions -------------------------------------------------------------------------------

    def register(self, name: str, artifact_dir: Path, *, metrics: dict[str, float] | None = None,
                 gate: dict[str, Any] | None = None, lineage: dict[str, Any] | None = None,
                 tags: dict[str, str] | None = None, reason: str = "") -> VersionRecord:
        """Upload a directory as the next version; the version exists once `version.json` is written."""
        check_name(name, "model name")
        artifact_dir = Path(artifact_dir)
        paths = sorted(p for p in artifact_dir.rglob("*") if p.is_file())
        if not paths:
            raise RegistryError(f"{artifact_dir} holds no files to register")
        version = self._claim_version(name)
        prefix = f"models/{name}/versions/{version}"
        files = {}
        for path in paths:
            relative = path.relative_to(artifact_dir).as_posix()
            self.store.put_file(f"{prefix}/{relative}", path)
            files[relative] = FileEntry(sha256=sha256_file(path), size=path.stat().st_size)
        record = VersionRecord(name=name, version=version, created_at=utcnow(), created_by=current_actor(),
                               files=files, lineage=lineage or {}, metrics=metrics or {}, gate=gate,
                               tags=tags or {})
        self.store.put_bytes(f"{prefix}/version.json", record.model_dump_json(indent=2).encode(), if_none_match=True)
        self._log(Event(event="registered", model=name, version=version, actor=record.created_by, reason=reason,
                        details={"files": len(files), "gate_passed": record.gate_passed}))
        return record

    def _claim_version(self, name: str) -> int:
        """Allocate the next number by conditional create, so concurrent registrations never collide."""
        prefix = f"models/{name}/versions/"
        taken = [int(k[len(prefix):].split("/")[0]) for k in self.store.list_keys(prefix)
                 if k.endswith("/claim.json")]
        version = max(taken, default=0) + 1
        while True:
            try:
                self.store.put_bytes(f"{prefix}{version}/claim.json",
                                     json.dumps({"by": current_actor(), "at": utcnow()}).encode(), if_none_match=True)
                return version
            except PreconditionFailed:
                version += 1

    def get_version(self, name: str, version: int) -> VersionRecord:
        check_name(name, "model name")
        try:
            data, _ = self.store.get_bytes(f"models/{name}/versions/{int(version)}/version.json")
        except KeyNotFound:
            raise RegistryError(f"{name} has no version {version}; see `alignops registry list`") from None
        return VersionRecord.model_validate_json(data)

    def list_models(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self.store.list_keys("models/") if _VERSION_JSON.match(k)})

    def list_versions(self, name: str) -> list[VersionRecord]:
        check_name(name, "model name")
        numbers = sorted(int(m.group(1)) for k in self.store.list_keys(f"models/{name}/versions/")
                         if (m := _VERSION_JSON.match(k)))
        return [self.get_version(name, n) for n in numbers]

    def resolve(self, ref: str) -> VersionRecord:
        """`name@alias`, `name:version`, or `name` (its latest version)."""
        match = _REF.match(ref)
        if not match:
            raise RegistryError(f"bad model reference {ref!r}: use NAME@ALIAS, NAME:VERSION or NAME")
        name = match["name"]
        if match["alias"]:
            alias = self.get_alias(name, match["alias"])
            if alias is None:
                raise RegistryError(f"{name} has no alias {match['alias']!r}")
            return self.get_version(name, alias.version)
        if match["version"]:
            return self.get_version(name, int(match["version"]))
        versions = self.list_versions(name)
        if not versions:
            raise RegistryError(f"no model named {name!r} in the registry")
        return versions[-1]

    def download(self, name: str, version: int, target: Path) -> Path:
        """Fetch every file of a version into `target`, each checked against its recorded sha256."""
        record = self.get_version(name, version)
        target = Path(target)
        staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            for relative, entry in record.files.items():
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                self.store.get_file(f"models/{name}/versions/{version}/{relative}", path)
                if sha256_file(path) != entry.sha256:
                    raise ChecksumMismatch(f"{name}:{version} file {relative!r} does not match its sha256: "
                                           "the stored copy was altered or damaged")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # ---- aliases and promotion ------------------------------------------------------------------

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        record, _ = self._read_alias(name, alias)
        return record

    def aliases(self, name: str) -> dict[str, AliasRecord]:
        keys = self.store.list_keys(f"models/{name}/aliases/")
        found = (self.get_alias(name, Path(k).stem) for k in keys if k.endswith(".json"))
        return {a.alias: a for a in found if a is not None}

    def _read_alias(self, name: str, alias: str) -> tuple[AliasRecord | None, str | None]:
        check_name(name, "model name")
        check_name(alias, "alias")
        try:
            data, etag = self.store.get_bytes(f"models/{name}/aliases/{alias}.json")
        except KeyNotFound:
            return None, None
        return AliasRecord.model_validate_json(data), etag

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "",
                  event: str = "alias_set", details: dict[str, Any] | None = None) -> AliasRecord:
        """Point `alias` at `version` by compare-and-swap, retrying when another writer got there first."""
        self.get_version(name, version)  # the target must exist
        actor = current_actor()
        while True:
            current, etag = self._read_alias(name, alias)
            history = [*current.history, current.version] if current else []
            record = AliasRecord(alias=alias, version=version, set_at=utcnow(), set_by=actor, reason=reason,
                                 history=history)
            try:
                self.store.put_bytes(f"models/{name}/aliases/{alias}.json", record.model_dump_json(indent=2).encode(),
                                     if_none_match=current is None, if_match=etag)
                break
            except PreconditionFailed:
                continue
        previous = current.version if current else None
        self._log(Event(event=event, model=name, version=version, alias=alias, actor=actor, reason=reason,
                        details={"previous": previous, **(details or {})}))
        return record

    def promote(self, name: str, version: int, alias: str = "production", *, reason: str = "",
                force_reason: str | None = None) -> AliasRecord:
        """Move `alias` to `version` if its recorded gate verdict passed, or when forced with a reason."""
        record = self.get_version(name, version)
        if not record.gate_passed and not force_reason:
            why = "no gate verdict recorded" if record.gate is None else "its gate verdict failed: " + "; ".join(
                r["reason"] for r in record.gate.get("rules", []) if not r.get("passed"))
            self._log(Event(event="promotion_refused", model=name, version=version, alias=alias,
                            actor=current_actor(), reason=reason, details={"why": why}))
            raise PromotionRefused(f"{name}:{version} cannot be promoted to {alias!r}: {why}. "
                                   "Re-evaluate it, or pass --force REASON to override (recorded).")
        details = {"forced": force_reason} if force_reason else {"gate_policy": record.gate.get("policy")}
        return self.set_alias(name, alias, version, reason=reason or force_reason or "", event="promoted",
                              details=details)

    # ---- audit log ------------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        """Append an event that happened outside the registry (e.g. a version was packaged)."""
        self._log(event)

    def _log(self, event: Event) -> None:
        # Keys sort in time order (microseconds); the random suffix keeps simultaneous writers apart.
        stamp = datetime.fromisoformat(event.at).strftime("%Y%m%dT%H%M%S%fZ")
        key = f"models/{event.model}/events/{stamp}-{uuid.uuid4().hex[:8]}.json"
        self.store.put_bytes(key, event.model_dump_json().encode(), if_none_match=True)

    def events(self, name: str) -> list[Event]:
        check_name(name, "model name")
        keys = self.store.list_keys(f"models/{name}/events/")
        return [Event.model_validate_json(self.store.get_bytes(k)[0]) for k in keys]
