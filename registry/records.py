"""The registry's records, as stored in JSON under `models/<name>/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class FileEntry(BaseModel):
    sha256: str
    size: int


class VersionRecord(BaseModel):
    """`versions/<n>/version.json`, written last: a version without it does not exist."""

    name: str
    version: int
    created_at: str
    created_by: str
    files: dict[str, FileEntry]
    lineage: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    gate: dict[str, Any] | None = Field(None, description="the gate verdict recorded at registration")
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def gate_passed(self) -> bool:
        return bool(self.gate and self.gate.get("passed"))


class AliasRecord(BaseModel):
    """`aliases/<alias>.json`: moved by compare-and-swap; `history` lists earlier holders, newest last."""

    alias: str
    version: int
    set_at: str
    set_by: str
    reason: str = ""
    history: list[int] = Field(default_factory=list)


EventKind = Literal["registered", "alias_set", "promoted", "promotion_refused", "rolled_back", "archived", "packaged",
                    "reevaluated"]


class Event(BaseModel):
    """One line of the append-only audit log (`events/<time>-<id>.json`)."""

    event: EventKind
    model: str
    version: int | None = None
    alias: str | None = None
    actor: str
    at: str = Field(default_factory=utcnow)
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
