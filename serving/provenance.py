"""What a bento checks at start-up before it serves a byte: that the model files it holds are the ones the
registry version recorded, and that the version's signature by a trusted key covers them and the record.

`alignops package` copies a version as `download` delivers it (its files, `version.json`, `version.sig`)
and adds `provenance.json`: whether the access policy required a signature of that version, and the trusted
public keys of the packaging platform. A serving environment may name its own trusted keys with
`ALIGNOPS_TRUSTED_KEYS`, which then win over the packed ones."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from core.digest import sha256_file
from registry.records import VersionRecord
from registry.signing import RECORD, SIGNATURE, SignatureInvalid, TrustedKeys, signed_digests, verify_version

PROVENANCE = "provenance.json"
PACKED_KEYS = "trusted-keys"


class Provenance(BaseModel):
    ref: str
    signature_required: bool = Field(description="the access policy required a signature of this version")


def pack(model_dir: Path, provenance: Provenance, trusted: TrustedKeys) -> None:
    """Write what the bento verifies at start: the requirement, and the packaging platform's trusted keys."""
    (model_dir / PROVENANCE).write_text(provenance.model_dump_json())
    keys = model_dir / PACKED_KEYS
    keys.mkdir(exist_ok=True)
    if trusted.folder is not None and trusted.folder.is_dir():
        for name in trusted.keys:
            (keys / f"{name}.pub").write_bytes((trusted.folder / f"{name}.pub").read_bytes())


def verify_served_model(model_dir: Path, skip: frozenset[str] = frozenset()) -> str | None:
    """The identity that signed the served version (None: unsigned, where that was allowed); SignatureInvalid,
    naming the version and what failed, where a file, the record or the signature does not verify. Files in
    `skip` are not hashed (a process that never reads them); the signature still covers their recorded
    digests."""
    if not (model_dir / PROVENANCE).is_file():
        raise SignatureInvalid(f"{model_dir.name}: the bento has no {PROVENANCE}, so what it serves cannot be checked: "
                               "package it again with this alignops")
    provenance = Provenance.model_validate_json((model_dir / PROVENANCE).read_text())
    data = (model_dir / RECORD).read_bytes()
    record = VersionRecord.model_validate_json(data)
    for name, entry in record.files.items():
        if name in skip:
            continue
        path = model_dir.joinpath(*name.split("/"))
        if not path.is_file() or sha256_file(path) != entry.sha256:
            raise SignatureInvalid(f"{record.ref}: the bento's {name} is not the file the version recorded: the "
                                   "bento was altered after packaging; package it again")
    signature = model_dir / SIGNATURE
    if not signature.is_file():
        if provenance.signature_required or record.signer is not None:
            raise SignatureInvalid(f"{record.ref}: the bento holds no signature, and one is required: package a "
                                   "signed version")
        return None
    trusted = TrustedKeys.from_folder(Path(os.environ.get("ALIGNOPS_TRUSTED_KEYS") or model_dir / PACKED_KEYS))
    digests = signed_digests({name: entry.sha256 for name, entry in record.files.items()}, data)
    return verify_version(record.ref, signature.read_bytes(), digests, trusted)
