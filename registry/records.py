"""The registry's records, as stored in JSON under `models/<name>/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from components.containment import relative_path
from registry.names import check_name

# Names that become path segments or keys, checked whenever a record is made or read.
ModelName = Annotated[str, AfterValidator(lambda value: check_name(value, "model name"))]
AliasName = Annotated[str, AfterValidator(lambda value: check_name(value, "alias"))]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class FileEntry(BaseModel):
    sha256: str
    size: int


class GateRule(BaseModel):
    """One rule of a recorded verdict; whatever else the gate said about it is kept as it came."""

    model_config = ConfigDict(extra="allow")

    rule: str
    passed: bool
    reason: str = ""


class GateRecord(BaseModel):
    """The gate verdict recorded at registration: what promotion reads (passed, the policy, the reasons)."""

    model_config = ConfigDict(extra="allow")

    policy: str
    passed: bool
    rules: list[GateRule] = Field(default_factory=list)

    @property
    def failures(self) -> list[GateRule]:
        return [r for r in self.rules if not r.passed]


class LineageRecord(BaseModel):
    """Where a version came from: the provenance every version can have (datasets by role, their DVC
    hashes, the parent version, the code); the model's own facts (training config, metrics) ride along."""

    model_config = ConfigDict(extra="allow")

    datasets: dict[str, str] = Field(default_factory=dict, description="role -> dataset `path@rev`")
    dataset_hashes: dict[str, str] = Field(default_factory=dict, description="role -> DVC hash")
    parent_model: str | None = None
    code_revision: str | None = None


class VersionRecord(BaseModel):
    """`versions/<n>/version.json`, written last: a version without it does not exist."""

    name: ModelName
    version: int
    created_at: str
    created_by: str
    files: dict[str, FileEntry]
    lineage: LineageRecord = Field(default_factory=LineageRecord)
    metrics: dict[str, float] = Field(default_factory=dict)
    gate: GateRecord | None = Field(None, description="the gate verdict recorded at registration")
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _contained(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        """Every file name stays inside the version's folder: checked when a record is read, before any
        file it names is written."""
        for name in files:
            relative_path(name, "file")
        return files

    @property
    def gate_passed(self) -> bool:
        return self.gate is not None and self.gate.passed

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


class AliasRecord(BaseModel):
    """`aliases/<alias>.json`: moved by compare-and-swap; `history` lists earlier holders, newest last.

    The record carries the audit event of the move that set it (`event`, to be stored at `event_key`), so a
    move and its audit record are one write: an event a crash kept from the log is restored from here."""

    alias: str
    version: int
    set_at: str
    set_by: str
    reason: str = ""
    history: list[int] = Field(default_factory=list)
    event_key: str | None = None
    event: Event | None = None


EventKind = Literal["registered", "alias_set", "promoted", "promotion_refused", "rolled_back", "archived", "packaged",
                    "reevaluated", "evaluated"]


class Event(BaseModel):
    """One line of the append-only audit log (`events/<time>-<id>.json`)."""


    event: EventKind
    model: ModelName
    version: int | None = None
    alias: AliasName | None = None
    actor: str
    at: str = Field(default_factory=utcnow)
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


AliasRecord.model_rebuild()  # its `event` field names Event, defined after it
