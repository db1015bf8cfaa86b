"""The registry's records, as stored in JSON under `models/<name>/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from core.containment import relative_path
from core.digest import canonical_digest
from registry.names import check_name, parse_ref

# Names that become path segments or keys, checked whenever a record is made or read.
ModelName = Annotated[str, AfterValidator(lambda value: check_name(value, "model name"))]
AliasName = Annotated[str, AfterValidator(lambda value: check_name(value, "alias"))]
VersionNumber = Annotated[int, Field(ge=1, le=999_999_999)]  # as many digits as a `name:N` reference allows
EVENT_KEY = r"^[0-9]{8}T[0-9]{12}Z-[A-Za-z0-9_-]{1,64}\.json$"  # `<time>-<suffix>.json`, one segment
MAX_HISTORY = 100_000  # earlier holders an alias record may list


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
    """The gate verdict recorded at registration: what promotion reads (passed, the reasons, and the policy it
    was judged by, whole: promotion judges by that content, never by a name looked up later)."""

    model_config = ConfigDict(extra="allow")

    policy: str
    passed: bool
    rules: list[GateRule] = Field(default_factory=list)
    policy_content: dict[str, Any] | None = Field(None, description="the whole policy; absent in records made "
                                                                    "before verdicts carried it")
    policy_digest: str | None = None

    @model_validator(mode="after")
    def _digest_matches(self) -> GateRecord:
        """An edited policy inside a record shows: its digest no longer matches."""
        if (self.policy_content is None) != (self.policy_digest is None):
            raise ValueError("a recorded gate policy needs both its content and its digest")
        if self.policy_content is not None and canonical_digest(self.policy_content) != self.policy_digest:
            raise ValueError(f"the recorded gate policy {self.policy!r} does not match its digest: the record was "
                             "edited")
        return self

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


SPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}:[0-9]{1,9}$"  # the version that defines it, `name:version`


class CompatibilityRecord(BaseModel):
    """That a version's queries can search galleries of another embedding space, how, and the evidence:
    the cross-model metrics (`xm/<set>/…`) beside the old model's own, measured in the same run."""

    space: str = Field(pattern=SPACE_PATTERN)
    via: Literal["bct", "projection"]
    projection: str | None = Field(None, description="the artifact file mapping queries into the space, for "
                                                     "`projection`")
    metrics: dict[str, float] = Field(default_factory=dict)
    old_metrics: dict[str, float] = Field(default_factory=dict, description="the old model's own, same sets")

    @field_validator("projection")
    @classmethod
    def _contained(cls, projection: str | None) -> str | None:
        return None if projection is None else str(relative_path(projection, "projection file"))


VerifiedBy = Literal["sts", "signature", "label"]  # how an actor is known: STS, a trusted key, or only a label


class VersionRecord(BaseModel):
    """`versions/<n>/version.json`, written last: a version without it does not exist."""

    name: ModelName
    version: int
    created_at: str
    created_by: str
    created_by_verified_by: VerifiedBy = "label"
    signer: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="the fingerprint of the key that signed "
                                                                             "it (`version.sig`)")
    trained_by: str | None = Field(None, max_length=512, description="who trained it; its registrant by default")
    files: dict[str, FileEntry]
    lineage: LineageRecord = Field(default_factory=LineageRecord)
    metrics: dict[str, float] = Field(default_factory=dict)
    gate: GateRecord | None = Field(None, description="the gate verdict recorded at registration")
    tags: dict[str, str] = Field(default_factory=dict)
    space: str | None = Field(None, pattern=SPACE_PATTERN, description="the embedding space its embeddings live "
                                                                     "in, where it is an older version's (`bct`)")
    compatibility: list[CompatibilityRecord] = Field(default_factory=list, max_length=100)

    @field_validator("files")
    @classmethod
    def _contained(cls, files: dict[str, FileEntry]) -> dict[str, FileEntry]:
        """Every file name stays inside the version's folder: checked when a record is read, before any
        file it names is written."""
        for name in files:
            relative_path(name, "file")
        return files

    @model_validator(mode="after")
    def _projections_are_its_files(self) -> VersionRecord:
        for record in self.compatibility:
            if record.projection is not None and record.projection not in self.files:
                raise ValueError(f"its compatibility with {record.space} names {record.projection}, which is not "
                                 "one of its files")
        return self

    @property
    def gate_passed(self) -> bool:
        return self.gate is not None and self.gate.passed

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def embedding_space(self) -> str:
        """Its own space (named by itself), or the older version's it was trained to share."""
        return self.space or self.ref

    def compatibility_with(self, space: str) -> CompatibilityRecord | None:
        """How its queries reach a gallery of `space`; None where they cannot (the gallery must be re-embedded).
        A gallery of its own space needs no record."""
        return next((c for c in self.compatibility if c.space == space), None)

    def can_query(self, space: str) -> bool:
        return space == self.embedding_space or self.compatibility_with(space) is not None


class AliasRecord(BaseModel):
    """`aliases/<alias>.json`: moved by compare-and-swap; `history` lists earlier holders, newest last.

    The record carries the audit event of the move that set it (`event`, to be stored at `event_key`), so a
    move and its audit record are one write: an event a crash kept from the log is restored from here."""

    alias: AliasName
    version: VersionNumber
    set_at: str
    set_by: str
    reason: str = ""
    history: list[VersionNumber] = Field(default_factory=list, max_length=MAX_HISTORY)
    event_key: str | None = Field(None, pattern=EVENT_KEY, description="one key under the model's events/")
    event: Event | None = None
    # A gallery's alias may name the query model it serves with (`name:version`): the pair moves in this
    # one write, so no reader ever sees a gallery with a model of another space. `paired_history` holds
    # the earlier holders' models, aligned with `history`.
    paired_model: str | None = None
    paired_history: list[str | None] = Field(default_factory=list, max_length=MAX_HISTORY)

    @model_validator(mode="after")
    def _aligned(self) -> AliasRecord:
        if self.paired_model is not None and parse_ref(self.paired_model).version is None:
            raise ValueError(f"a paired model is a version (NAME:N), not {self.paired_model!r}")
        missing = len(self.history) - len(self.paired_history)
        if missing < 0:
            raise ValueError("an alias record has more paired models than earlier holders")
        self.paired_history = [None] * missing + self.paired_history
        return self

    def earlier(self) -> tuple[int, str | None]:
        """The holder before this one, and its paired model."""
        return self.history[-1], self.paired_history[-1]


EventKind = Literal["registered", "alias_set", "promoted", "promotion_refused", "rolled_back", "archived", "packaged",
                    "reevaluated", "evaluated", "audited", "approved"]


class Event(BaseModel):
    """One line of the append-only audit log (`events/<time>-<id>.json`)."""


    event: EventKind
    model: ModelName
    version: VersionNumber | None = None
    alias: AliasName | None = None
    actor: str = Field("", description="filled in by the registry that records it")
    actor_verified_by: VerifiedBy = "label"
    at: str = Field(default_factory=utcnow)
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


AliasRecord.model_rebuild()  # its `event` field names Event, defined after it
