"""The model registry: immutable versions, movable aliases, gated promotion and an audit log.

It stores directories and records and knows nothing of models. Layout, identical on every store, for each
kind (`models`, and the `galleries` models embedded):

    <kind>/<name>/versions/<n>/<artifact files>   + version.json (sha256 of every file; written last)
    <kind>/<name>/aliases/<alias>.json            pointer, moved by compare-and-swap
    <kind>/<name>/events/<time>-<id>.json         append-only audit log
    <kind>/<name>/runs/<key>.json                 the version a run registered (registration is idempotent)
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from core.containment import UnsafePath, contained
from core.digest import sha256_file
from registry.access import ALL_VERSIONS, Actor, Trust
from registry.names import check_name, parse_ref
from registry.records import (
    AliasRecord,
    CompatibilityRecord,
    Event,
    FileEntry,
    GateRecord,
    LineageRecord,
    VersionRecord,
    utcnow,
)
from registry.signing import (
    RECORD,
    RESERVED,
    SIGNATURE,
    SignatureInvalid,
    canonical,
    sign_version,
    signed_digests,
    verify_statement,
    verify_version,
)
from registry.store import KeyNotFound, LocalStore, PreconditionFailed, Store

KINDS = ("models", "galleries")
RUN_KEY = re.compile(r"[0-9a-f]{64}")  # what a registry holds: model artifacts, and the galleries models embedded

class RegistryError(RuntimeError):
    pass


class PromotionRefused(RegistryError):
    pass


class ChecksumMismatch(RegistryError):
    pass


class TamperedRecord(RegistryError):
    """A stored record that breaks its schema (for example a file name that leaves the version's folder)."""


# (candidate, incumbent holding the alias or None) -> reasons against promoting; empty means go.
PromotionCheck = Callable[[VersionRecord, VersionRecord | None], list[str]]
_COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


def _compare(value: float | None, op: str, threshold: float) -> bool:
    if op not in _COMPARE:
        raise RegistryError(f"unknown comparison {op!r}: use one of {list(_COMPARE)}")
    return value is not None and _COMPARE[op](value, threshold)


@dataclass(frozen=True)
class Search:
    """What a search found, and the tampered records it could not judge (each named, none dropped silently)."""

    records: list[VersionRecord]
    refused: list[str]


class Registry:
    """One kind of artifact in a store: `models` (the default) or `galleries`, with the same versions, aliases
    and audit log under `<kind>/<name>/`."""

    def __init__(self, store: Store, kind: str = "models", trust: Trust | None = None):
        if kind not in KINDS:
            raise RegistryError(f"a registry holds one of {KINDS}, not {kind!r}")
        self.store, self.kind, self.trust = store, kind, trust or Trust()
        self._version_json = re.compile(rf"^{kind}/[^/]+/versions/(\d+)/version\.json$")

    def galleries(self) -> Registry:
        """The galleries kept beside these models, in the same store, under the same trust."""
        return Registry(self.store, "galleries", self.trust)

    @classmethod
    def local(cls, root: Path, trust: Trust | None = None) -> Registry:
        return cls(LocalStore(root), trust=trust)

    @classmethod
    def from_url(cls, url: str, trust: Trust | None = None) -> Registry:
        """`s3://bucket/prefix` (boto3's endpoint, region and credentials chain) or a local directory."""
        if url.startswith("s3://"):
            from registry.s3 import S3Store

            return cls(S3Store.from_url(url), trust=trust)
        return cls.local(Path(url), trust)

    @functools.cached_property
    def actor(self) -> Actor:
        """Who this process is to the store: the S3 caller as STS names it, else (a local store, or an S3
        service without STS) only a label."""
        identify = getattr(self.store, "caller_identity", None)
        name = identify() if identify else None
        return Actor(name, "sts") if name else Actor.label()

    def _event(self, **fields) -> Event:
        return Event(actor=self.actor.name, actor_verified_by=self.actor.verified_by, **fields)

    # ---- versions -------------------------------------------------------------------------------

    def register(self, name: str, artifact_dir: Path, *, metrics: dict[str, float] | None = None,
                 gate: GateRecord | None = None, lineage: LineageRecord | None = None,
                 tags: dict[str, str] | None = None, reason: str = "", space: str | None = None,
                 compatibility: list[CompatibilityRecord] | None = None, run_key: str | None = None,
                 trained_by: str | None = None) -> VersionRecord:
        """Upload a directory as the next version; the version exists once `version.json` is written.
        `space` names the older version whose embedding space it shares (trained compatible with it);
        `compatibility` records which other spaces' galleries its queries can search, with the evidence.
        `run_key` (64 hex digits) makes registration idempotent per run: the number claimed for the key is
        the run's, so a retry (after a crash, or after this call returned) returns or completes that version
        instead of registering another. With a signing key, the version is signed (`version.sig`, written
        before the record) and its registrant is the key's identity; `trained_by` names whoever trained it,
        this registrant by default."""
        check_name(name, "model name")
        artifact_dir = Path(artifact_dir)
        paths = sorted(p for p in artifact_dir.rglob("*") if p.is_file())
        # A folder made by `download` holds the record and signature of the version it came from: they are not
        # the new version's files (it gets its own), and the registered event names them as left out.
        left_out = sorted(p.name for p in paths if p.parent == artifact_dir and p.name in RESERVED)
        paths = [p for p in paths if not (p.parent == artifact_dir and p.name in RESERVED)]
        if not paths:
            raise RegistryError(f"{artifact_dir} holds no files to register")
        for path in paths:  # a symlink out of the artifact would upload a file from elsewhere
            try:
                contained(artifact_dir, path.relative_to(artifact_dir).as_posix(), "artifact file")
            except UnsafePath as error:
                raise RegistryError(f"{error}; nothing was registered") from None
        held = {path.relative_to(artifact_dir).as_posix() for path in paths}
        compatibility = [CompatibilityRecord.model_validate(c) for c in compatibility or []]
        for record in compatibility:  # checked before a version number is claimed or a byte uploaded
            if record.projection is not None and record.projection not in held:
                raise RegistryError(f"the compatibility with {record.space} names {record.projection}, which "
                                    f"{artifact_dir} does not hold; nothing was registered")
        key = self.trust.signing_key
        registrant = (self.trust.signer_identity() or f"key:{key.fingerprint[:16]}") if key else self.actor.name
        version = self._run_version(name, run_key) if run_key else self._claim_version(name)
        prefix = f"{self.kind}/{name}/versions/{version}"
        if run_key and self.store.exists(f"{prefix}/{RECORD}"):
            return self.get_version(name, version)  # the run's version, already made
        # Hash in a thread while uploading (hashlib releases the GIL): the checksums cost no extra time.
        with ThreadPoolExecutor(max_workers=1) as hasher:
            digests = {path: hasher.submit(sha256_file, path) for path in paths}
            for path in paths:
                self.store.put_file(f"{prefix}/{path.relative_to(artifact_dir).as_posix()}", path)
            files = {path.relative_to(artifact_dir).as_posix(): FileEntry(sha256=digest.result(),
                                                                         size=path.stat().st_size)
                     for path, digest in digests.items()}
        record = VersionRecord(name=name, version=version, created_at=utcnow(), created_by=registrant,
                               files=files, lineage=lineage or LineageRecord(), metrics=metrics or {}, gate=gate,
                               tags=tags or {}, space=space, compatibility=compatibility,
                               created_by_verified_by="signature" if key else self.actor.verified_by,
                               signer=key.fingerprint if key else None, trained_by=trained_by or registrant)
        data = record.model_dump_json(indent=2).encode()
        if key:  # the signature first: a version that exists is never without the one it was made with
            self.store.put_bytes(f"{prefix}/{SIGNATURE}", sign_version(record.ref, _digests(record, data), key))
        self.store.put_bytes(f"{prefix}/{RECORD}", data, if_none_match=True)
        registered = _registered_event(record, reason, left_out=left_out)
        self._log(registered, _event_key(registered, f"{REGISTERED}-{version}"))
        return record

    def _run_version(self, name: str, run_key: str) -> int:
        """The version number of run `run_key`: the one claimed for it before, else a new one claimed for it by
        conditional create (two racing retries of one run agree on the number)."""
        if not RUN_KEY.fullmatch(run_key):
            raise RegistryError(f"a run key is 64 hex digits, not {run_key[:80]!r}")
        key = f"{self.kind}/{name}/runs/{run_key}.json"
        try:
            return int(json.loads(self.store.get_bytes(key)[0])["version"])
        except KeyNotFound:
            pass
        version = self._claim_version(name)
        try:
            self.store.put_bytes(key, json.dumps({"version": version, "at": utcnow()}).encode(), if_none_match=True)
            return version
        except PreconditionFailed:  # the run's other attempt claimed first: its number (ours stays unused)
            return int(json.loads(self.store.get_bytes(key)[0])["version"])

    def _claim_version(self, name: str) -> int:
        """Allocate the next number by conditional create, so concurrent registrations never collide.

        `claims/latest.json` is a hint (the last number claimed) that saves listing every version; the
        conditional create of `versions/<n>/claim.json` stays the authority, so a stale hint only costs a
        retry per number already taken.
        """
        hint_key = f"{self.kind}/{name}/claims/latest.json"
        try:
            version = json.loads(self.store.get_bytes(hint_key)[0])["version"] + 1
        except KeyNotFound:
            version = 1
        while True:
            try:
                self.store.put_bytes(f"{self.kind}/{name}/versions/{version}/claim.json",
                                     json.dumps({"by": self.actor.name, "at": utcnow()}).encode(), if_none_match=True)
                break
            except PreconditionFailed:
                version += 1
        self.store.put_bytes(hint_key, json.dumps({"version": version}).encode())
        return version

    def get_version(self, name: str, version: int) -> VersionRecord:
        return self._read_version(name, version)[0]

    def _read_version(self, name: str, version: int) -> tuple[VersionRecord, bytes]:
        """The record and the bytes it was read from (what a signature covers)."""
        check_name(name, "model name")
        try:
            data, _ = self.store.get_bytes(f"{self.kind}/{name}/versions/{int(version)}/{RECORD}")
        except KeyNotFound:
            raise self._not_found(name, f"{name} has no version {version}") from None
        try:
            return VersionRecord.model_validate_json(data), data
        except ValidationError as error:
            problems = "; ".join(e["msg"] for e in error.errors()[:3])
            raise TamperedRecord(f"{name}:{version} has an invalid version.json ({problems}): it was altered "
                                 "outside the registry; nothing was downloaded") from None

    def list_models(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self.store.list_keys(f"{self.kind}/") if self._version_json.match(k)})

    def list_versions(self, name: str, include_archived: bool = False) -> list[VersionRecord]:
        """Every (unarchived) version; a tampered record fails the whole list (see `search` for one that goes on)."""
        read = self._read_versions(name, include_archived)
        for outcome in read:
            if isinstance(outcome, TamperedRecord):
                raise outcome
        return read

    def _read_versions(self, name: str, include_archived: bool) -> list[VersionRecord | TamperedRecord]:
        check_name(name, "model name")
        numbers = sorted(int(m.group(1)) for k in self.store.list_keys(f"{self.kind}/{name}/versions/")
                         if (m := self._version_json.match(k)))
        archived = set() if include_archived else {
            int(Path(k).stem) for k in self.store.list_keys(f"{self.kind}/{name}/archived/")}

        def read(number: int) -> VersionRecord | TamperedRecord:
            try:
                return self.get_version(name, number)
            except TamperedRecord as refused:
                return refused
        with ThreadPoolExecutor(max_workers=8) as pool:  # one GET per version: overlap their latency
            return list(pool.map(read, [n for n in numbers if n not in archived]))

    def resolve(self, ref: str) -> VersionRecord:
        """`name@alias`, `name:version`, or `name` (its latest version)."""
        name, alias_name, version = parse_ref(ref)
        if alias_name:
            alias = self.get_alias(name, alias_name)
            if alias is None:
                raise self._not_found(name, f"{name} has no alias {alias_name!r}")
            return self.get_version(name, alias.version)
        if version is not None:
            return self.get_version(name, version)
        versions = self.list_versions(name)
        if not versions:
            raise self._not_found(name, f"{name} has no versions")
        return versions[-1]

    def _not_found(self, name: str, missing: str) -> RegistryError:
        """What is missing, and what there is: the model's versions and aliases, or the closest model names."""
        if any(self._version_json.match(k) for k in self.store.list_keys(f"{self.kind}/{name}/versions/")):
            versions = [r.version for r in self._read_versions(name, include_archived=False)
                        if not isinstance(r, TamperedRecord)]
            held = ", ".join(f"{alias}={record.version}" for alias, record in self.aliases(name).items())
            return RegistryError(f"{missing}; it has versions {', '.join(map(str, versions)) or 'none unarchived'}"
                                 + (f" and aliases {held}" if held else ""))
        close = difflib.get_close_matches(name, self.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "see `alignops registry list`"
        return RegistryError(f"no model named {name!r} in the registry {self.store.url}: {hint}")

    def download(self, name: str, version: int, target: Path) -> Path:
        """Fetch every file of a version into `target`, each checked against its recorded sha256, with the
        record and its signature beside them (`version.json`, `version.sig`: the folder verifies with the
        stock model-signing tool too). A signature is always verified against the trusted keys; an unsigned
        version is refused where the access policy requires a signature of it. Files land in a staging
        folder beside `target` that is renamed into place only when all are checked, and removed on any
        failure."""
        record, data = self._read_version(name, version)  # refuses a record naming a file outside the version
        bundle, _ = self._checked_signature(record, data)
        target = Path(target)
        staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            for relative, entry in record.files.items():
                path = staging.joinpath(*relative.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                self.store.get_file(f"{self.kind}/{name}/versions/{version}/{relative}", path)
                if sha256_file(path) != entry.sha256:
                    raise ChecksumMismatch(f"{name}:{version} file {relative!r} does not match its sha256: "
                                           "the stored copy was altered or damaged")
            staging.mkdir(parents=True, exist_ok=True)
            (staging / RECORD).write_bytes(data)
            if bundle is not None:
                (staging / SIGNATURE).write_bytes(bundle)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def verify(self, record: VersionRecord, aliases: list[str] | None = None) -> str | None:
        """The trusted identity that signed this version; None where it is unsigned and the policy lets it be
        (as the holder of `aliases`, else of the aliases it holds now); `SignatureInvalid`, one line naming the
        version and what failed, otherwise."""
        stored, data = self._read_version(record.name, record.version)
        return self._checked_signature(stored, data, aliases)[1]

    def _checked_signature(self, record: VersionRecord, data: bytes,
                           aliases: list[str] | None = None) -> tuple[bytes | None, str | None]:
        """The version's signature and signer, verified against the trusted keys."""
        try:
            bundle, _ = self.store.get_bytes(f"{self.kind}/{record.name}/versions/{record.version}/{SIGNATURE}")
        except KeyNotFound:
            bundle = None
        if bundle is not None:
            return bundle, verify_version(record.ref, bundle, _digests(record, data), self.trust.trusted)
        if record.signer is not None:
            raise SignatureInvalid(f"{record.ref} records a signer but its signature is missing: it was removed; "
                                   "refused")
        held = self.aliases_of(record) if aliases is None else aliases
        if self.trust.policy.requires_signature(held):
            which = "every version" if ALL_VERSIONS in self.trust.policy.signatures_required_for else (
                "a holder of " + ", ".join(a for a in held if a in self.trust.policy.signatures_required_for))
            raise SignatureInvalid(f"{record.ref} is unsigned, and the access policy requires a signature of {which}: "
                                   "register it again with a signing key (`alignops keys create`); refused")
        return None, None

    # ---- aliases and promotion ------------------------------------------------------------------

    def get_alias(self, name: str, alias: str) -> AliasRecord | None:
        record, _ = self._read_alias(name, alias)
        return record

    def aliases(self, name: str) -> dict[str, AliasRecord]:
        keys = self.store.list_keys(f"{self.kind}/{name}/aliases/")
        found = (self.get_alias(name, Path(k).stem) for k in keys if k.endswith(".json"))
        return {a.alias: a for a in found if a is not None}

    def _read_alias(self, name: str, alias: str) -> tuple[AliasRecord | None, str | None]:
        check_name(name, "model name")
        check_name(alias, "alias")
        try:
            data, etag = self.store.get_bytes(f"{self.kind}/{name}/aliases/{alias}.json")
        except KeyNotFound:
            return None, None
        try:
            return AliasRecord.model_validate_json(data), etag
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
            raise TamperedRecord(f"{name}@{alias} has an invalid alias record ({problems}): it was altered outside "
                                 "the registry; nothing was written") from None

    def aliases_of(self, record: VersionRecord) -> list[str]:
        """The aliases that point at this version, sorted."""
        return sorted(a for a, held in self.aliases(record.name).items() if held.version == record.version)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = "") -> AliasRecord:
        """Point `alias` at `version` (no gate: for `candidate`, other working aliases and galleries), with the
        signature and approvals the access policy requires for `alias`."""
        details = self._admit(*self._read_version(name, version), alias, reason)
        return self._move_alias(name, alias, version, reason=reason, event="alias_set", details=details)

    def promote(self, name: str, version: int, alias: str = "production", *, reason: str = "",
                force_reason: str | None = None, check: PromotionCheck | None = None) -> AliasRecord:
        """Move `alias` to `version` if its recorded gate verdict passed and `check(candidate, incumbent)`
        finds no reason against it, or when forced with a reason; in either case only with the signature and
        the approvals the access policy requires for `alias`. Every attempt leaves one audit event.

        The check runs against the version holding the alias at the moment of the compare-and-swap: if
        another promotion moves the alias in between, the swap fails and the check runs again.
        """
        record, data = self._read_version(name, version)
        if self.is_archived(name, version):
            return self._refuse(record, alias, reason, "the version is archived")
        if not record.gate_passed and not force_reason:
            failed = [r.reason for r in record.gate.failures] if record.gate else []
            more = f"; {len(failed) - 1} more in `alignops registry show {name}:{version}`" if len(failed) > 1 else ""
            why = "no gate verdict recorded" if record.gate is None else "its gate verdict failed" + (
                f": {failed[0]}{more}" if failed else "")
            return self._refuse(record, alias, reason, why)
        admitted = self._admit(record, data, alias, reason)

        def against_incumbent(current: AliasRecord | None) -> None:
            if check is None or force_reason:
                return
            incumbent = self.get_version(name, current.version) if current else None
            objections = check(record, incumbent)
            if objections:
                self._refuse(record, alias, reason, "; ".join(objections))

        details = ({"forced": force_reason} if force_reason else {"gate_policy": record.gate.policy}) | admitted
        return self._move_alias(name, alias, version, reason=reason or force_reason or "", event="promoted",
                                details=details, precondition=against_incumbent)

    def _admit(self, record: VersionRecord, data: bytes, alias: str, reason: str) -> dict[str, Any]:
        """What the access policy asks of a version taking `alias`, checked (a refusal is logged and raised): a
        signature by a trusted key, and approvals; their identities go into the move's event."""
        try:
            signer = self._checked_signature(record, data, [alias])[1]
        except SignatureInvalid as error:
            self._refuse(record, alias, reason, str(error), remedy=_SIGN)
        approvers = self._count_approvals(record, data, alias, signer, reason)
        return ({"signed_by": signer} if signer else {}) | ({"approved_by": approvers} if approvers else {})

    def _count_approvals(self, record: VersionRecord, data: bytes, alias: str, signer: str | None,
                         reason: str) -> list[str]:
        """The identities whose approvals count towards moving `alias` to this version; refused when fewer than
        the policy requires."""
        needed = self.trust.policy.approvals.get(alias, 0)
        if not needed:
            return []
        approvers, excluded = self._approvers(record, data, alias, signer)
        if len(approvers) < needed:
            others = " and ".join(f"{who} ({role})" for role, who in excluded.items())
            self._refuse(record, alias, reason, f"{alias!r} needs {needed} signed approval"
                         f"{'s' if needed > 1 else ''} by distinct trusted identities other than {others}; it has "
                         f"{len(approvers)}{' (' + ', '.join(approvers) + ')' if approvers else ''}",
                         remedy=f"another identity runs `alignops registry approve {record.ref} --alias {alias} "
                                "--reason …` with its own key")
        return approvers

    def _approvers(self, record: VersionRecord, data: bytes, alias: str,
                   signer: str | None) -> tuple[list[str], dict[str, str]]:
        """The approvers that count, and the identities (by role) whose approvals do not."""
        excluded = {role: who for role, who in (("registrant", signer or record.created_by),
                                                 ("trainer", record.trained_by or record.created_by))
                    if role in self.trust.policy.distinct_from}
        return [who for who in self.approvals(record, alias, data) if who not in excluded.values()], excluded

    def approvals_missing(self, record: VersionRecord, alias: str) -> int:
        """How many more approvals moving `alias` to this version needs (a bad signature raises)."""
        needed = self.trust.policy.approvals.get(alias, 0)
        if not needed:
            return 0
        stored, data = self._read_version(record.name, record.version)
        signer = self._checked_signature(stored, data, [alias])[1]
        return max(0, needed - len(self._approvers(stored, data, alias, signer)[0]))

    def approve(self, name: str, version: int, alias: str, *, reason: str) -> Event:
        """Record this caller's approval of moving `alias` to `version`: a statement naming the version's record
        (by digest), the alias and the reason, signed with this process's key. It counts only where the key is
        trusted, and only for exactly that record."""
        check_name(alias, "alias")
        if not reason.strip():
            raise RegistryError("an approval needs a reason: pass --reason (it is recorded)")
        key = self.trust.need_signing_key(f"approving {name}:{version} for {alias!r}")
        identity = self.trust.signer_identity()
        if identity is None:
            raise SignatureInvalid(f"your signing key {key.fingerprint[:16]}… is not among the trusted keys in "
                                   f"{self.trust.trusted.where()}, so an approval by it would not count: have its "
                                   "public key added there first")
        record, data = self._read_version(name, version)
        statement = {"kind": self.kind, "model": name, "version": record.version, "alias": alias, "reason": reason,
                     "record_sha256": hashlib.sha256(data).hexdigest(), "at": utcnow(), "key": key.fingerprint}
        event = Event(event="approved", model=name, version=record.version, alias=alias, actor=identity,
                      actor_verified_by="signature", at=statement["at"], reason=reason,
                      details={"statement": statement, "signature": key.sign_bytes(canonical(statement))})
        self._log(event)
        return event

    def approvals(self, record: VersionRecord, alias: str, data: bytes | None = None) -> list[str]:
        """The distinct trusted identities whose signed approvals of moving `alias` to exactly this record verify
        (an approval whose statement or signature was altered, or made by an unknown key, does not count)."""
        data = data if data is not None else self._read_version(record.name, record.version)[1]
        expected = {"kind": self.kind, "model": record.name, "version": record.version, "alias": alias,
                    "record_sha256": hashlib.sha256(data).hexdigest()}
        found: list[str] = []
        for event in self.events(record.name):
            statement, signature = event.details.get("statement"), event.details.get("signature")
            if event.event != "approved" or not isinstance(statement, dict) or not isinstance(signature, str):
                continue
            if any(statement.get(k) != v for k, v in expected.items()):
                continue
            who = verify_statement(statement, signature, str(statement.get("key")), self.trust.trusted)
            if who is not None and who not in found:
                found.append(who)
        return found

    def _refuse(self, record: VersionRecord, alias: str, reason: str, why: str, remedy: str | None = None) -> NoReturn:
        self._log(self._event(event="promotion_refused", model=record.name, version=record.version, alias=alias,
                              reason=reason, details={"why": why}))
        # What to do comes before the reasons, which can be long: a one-line display cuts the end.
        raise PromotionRefused(f"{record.name}:{record.version} cannot be promoted to {alias!r} ({remedy or _REGATE}): "
                               f"{why}")

    def pair(self, name: str, alias: str, version: int, model: str | None, *, reason: str = "",
             expected: tuple[int, str | None] | None = None) -> AliasRecord:
        """Point a gallery's `alias` at `version` paired with the query `model` (`name:N`), in one
        compare-and-swap. With `expected` (the (version, model) the caller planned from), the move is refused
        when another writer moved the pair since: an upgrade never lands on a pair it did not compare."""
        def unchanged(current: AliasRecord | None) -> None:
            held = (current.version, current.paired_model) if current else None
            if expected is not None and held != expected:
                raise RegistryError(f"{name}@{alias} moved to {held} while this change was prepared against "
                                    f"{expected}: run it again against the new holder")

        details = self._admit(*self._read_version(name, version), alias, reason)
        return self._move_alias(name, alias, version, reason=reason, event="alias_set", paired_model=model,
                                precondition=unchanged, details=details)

    def rollback(self, name: str, alias: str = "production", *, reason: str = "") -> AliasRecord:
        """Move `alias` back to the version that held it before (with the model it was paired with). Its
        signature is checked where the policy requires one; approvals are not asked again (it held the alias
        before, and a rollback is the way back in an emergency)."""
        def previous_holder(current: AliasRecord | None) -> tuple[int, str | None]:
            if current is None or not current.history:
                raise RegistryError(f"{name}@{alias} has no earlier holder to roll back to")
            self._checked_signature(*self._read_version(name, current.earlier()[0]), [alias])
            return current.earlier()

        return self._move_alias(name, alias, None, reason=reason, event="rolled_back", target=previous_holder)

    def _move_alias(self, name: str, alias: str, version: int | None, *, reason: str, event: str,
                    details: dict[str, Any] | None = None, paired_model: str | None = None,
                    precondition: Callable[[AliasRecord | None], None] | None = None,
                    target: Callable[[AliasRecord | None], tuple[int, str | None]] | None = None) -> AliasRecord:
        """Compare-and-swap `alias` to `version` and `paired_model` (or back to the earlier holder that
        `target(current)` names, popped from the history), re-reading and re-checking when another writer
        won. The new alias record carries its audit event, which is then written to the log: a crash between
        the two leaves the event in the record, and the next reconciliation writes it. Moving an alias to
        what it holds is a no-op (a retry)."""
        if version is not None:
            self.get_version(name, version)  # the target must exist
        actor = self.actor
        attempts = 0
        while True:
            attempts += 1
            current, etag = self._read_alias(name, alias)
            if precondition:
                precondition(current)
            if target:
                version, paired_model = target(current)
                history, paired_history = current.history[:-1], current.paired_history[:-1]
            else:
                if current is not None and (current.version, current.paired_model) == (version, paired_model):
                    self._reconcile(name)
                    return current
                history = [*current.history, current.version] if current else []
                paired_history = [*current.paired_history, current.paired_model] if current else []
            at = utcnow()
            audit = Event(event=event, model=name, version=version, alias=alias, actor=actor.name,
                          actor_verified_by=actor.verified_by, at=at, reason=reason,
                          details={"previous": current.version if current else None, "attempts": attempts,
                                   **(details or {}), **({"paired_model": paired_model} if paired_model else {})})
            record = AliasRecord(alias=alias, version=version, set_at=at, set_by=actor.name, reason=reason,
                                 history=history, paired_model=paired_model, paired_history=paired_history,
                                 event_key=_event_key(audit, uuid.uuid4().hex[:8]), event=audit)
            try:
                self._write_alias(name, record, etag)
                break
            except PreconditionFailed:
                continue
        self._log(audit, record.event_key)
        return record

    def _write_alias(self, name: str, record: AliasRecord, etag: str | None) -> None:
        self.store.put_bytes(f"{self.kind}/{name}/aliases/{record.alias}.json",
                             record.model_dump_json(indent=2).encode(), if_none_match=etag is None, if_match=etag)

    # ---- archive and search --------------------------------------------------------------------

    def archive(self, name: str, version: int, *, reason: str = "") -> None:
        """Hide a version from listings and promotion; its files stay (versions are immutable)."""
        self.get_version(name, version)
        holders = [a for a, rec in self.aliases(name).items() if rec.version == version]
        if holders:
            raise RegistryError(f"{name}:{version} holds aliases {holders}: move them before archiving")
        try:
            self.store.put_bytes(f"{self.kind}/{name}/archived/{version}.json",
                                 json.dumps({"by": self.actor.name, "at": utcnow(), "reason": reason}).encode(),
                                 if_none_match=True)
        except PreconditionFailed:
            return  # already archived
        self._log(self._event(event="archived", model=name, version=version, reason=reason))

    def is_archived(self, name: str, version: int) -> bool:
        return self.store.exists(f"{self.kind}/{name}/archived/{int(version)}.json")

    def search(self, name: str | None = None, *, alias: str | None = None, tag: tuple[str, str] | None = None,
               dataset: str | None = None, metric: tuple[str, str, float] | None = None,
               include_archived: bool = False) -> Search:
        """Versions matching every given filter: holding `alias`, tagged `key=value`, trained on dataset
        reference `dataset`, or with `metric` compared (`>=`, `<=`, `>`, `<`) to a threshold. A tampered
        version record is named in `refused`, and the search goes on over the others."""
        found, refused = [], []
        for model in [name] if name else self.list_models():
            holders = {rec.version for a, rec in self.aliases(model).items() if alias is None or a == alias}
            for record in self._read_versions(model, include_archived):
                if isinstance(record, TamperedRecord):
                    refused.append(str(record))
                    continue
                if alias is not None and record.version not in holders:
                    continue
                if tag is not None and record.tags.get(tag[0]) != tag[1]:
                    continue
                if dataset is not None and dataset not in record.lineage.datasets.values():
                    continue
                if metric is not None and not _compare(record.metrics.get(metric[0]), metric[1], metric[2]):
                    continue
                found.append(record)
        return Search(records=found, refused=refused)

    def presigned_url(self, name: str, version: int, file: str, expires_s: int = 3600) -> str:
        """A time-limited download link for one file of a version (S3 stores only; made only when asked)."""
        presign = getattr(self.store, "presign", None)
        if presign is None:
            raise RegistryError("presigned URLs need an S3 registry")
        if file not in self.get_version(name, version).files:
            raise RegistryError(f"{name}:{version} has no file {file!r}")
        return presign(f"{self.kind}/{name}/versions/{version}/{file}", expires_s)

    # ---- audit log ------------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        """Append an event that happened outside the registry (e.g. a version was packaged), as this caller."""
        self._log(event.model_copy(update={"actor": self.actor.name, "actor_verified_by": self.actor.verified_by}))

    def _log(self, event: Event, key: str | None = None) -> None:
        """Append `event` at `key` (default: a fresh time-ordered key). Writing a key that exists is a no-op,
        so restoring an event twice leaves one copy."""
        key = key or _event_key(event, uuid.uuid4().hex[:8])
        try:
            self.store.put_bytes(f"{self.kind}/{event.model}/events/{key}", event.model_dump_json().encode(),
                                 if_none_match=True)
        except PreconditionFailed:
            pass

    def _reconcile(self, name: str) -> None:
        """Write the audit events a crash kept from the log: a version without its `registered` event, an
        alias whose move's event is missing. Runs before the log is read."""
        keys = set(self.store.list_keys(f"{self.kind}/{name}/"))
        events = {k.rsplit("/", 1)[1] for k in keys if k.startswith(f"{self.kind}/{name}/events/")}
        suffixes = {e.split("-", 1)[1] for e in events if "-" in e}
        for key in sorted(keys):
            if (match := self._version_json.match(key)) and f"{REGISTERED}-{match.group(1)}.json" not in suffixes:
                event = _registered_event(self.get_version(name, int(match.group(1))), "", recovered=True)
                self._log(event, _event_key(event, f"{REGISTERED}-{match.group(1)}"))
            elif key.startswith(f"{self.kind}/{name}/aliases/") and key.endswith(".json"):
                record, _ = self._read_alias(name, Path(key).stem)
                ours = record and record.event and record.event.model == name  # never another model's log
                if ours and record.event_key and record.event_key not in events:
                    self._log(record.event.model_copy(update={"details": {**record.event.details,
                                                                           "recovered": True}}), record.event_key)

    def events(self, name: str) -> list[Event]:
        check_name(name, "model name")
        self._reconcile(name)
        keys = self.store.list_keys(f"{self.kind}/{name}/events/")
        return [Event.model_validate_json(self.store.get_bytes(k)[0]) for k in keys]


REGISTERED = "registered"


def _event_key(event: Event, suffix: str) -> str:
    """`<time>-<suffix>.json`: keys sort in time order (microseconds); the suffix keeps writers apart."""
    return f"{datetime.fromisoformat(event.at).strftime('%Y%m%dT%H%M%S%fZ')}-{suffix}.json"


def _registered_event(record: VersionRecord, reason: str, recovered: bool = False,
                      left_out: list[str] | None = None) -> Event:
    details = {"files": len(record.files), "gate_passed": record.gate_passed} | ({"recovered": True} if recovered
                                                                                 else {})
    details |= {"left_out": left_out} if left_out else {}
    return Event(event="registered", model=record.name, version=record.version, actor=record.created_by,
                 actor_verified_by=record.created_by_verified_by, at=record.created_at, reason=reason,
                 details=details)


_REGATE = ("a version keeps the gate it was registered with: register a gated one with `alignops train` or `alignops "
           "finetune`, `alignops evaluate` measures any, or pass --force REASON, recorded")
_SIGN = "the access policy requires a signed version: register it with a signing key"


def _digests(record: VersionRecord, data: bytes) -> dict[str, str]:
    return signed_digests({name: entry.sha256 for name, entry in record.files.items()}, data)
