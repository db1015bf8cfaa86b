"""An artifact as a signed registry version delivers it, for the tests and benchmarks that build a bento
without a registry of their own (a bento serves only what verifies at start)."""

from __future__ import annotations

from pathlib import Path

from registry.access import Trust
from registry.registry import Registry
from registry.signing import SigningKey, TrustedKeys, create_key
from serving.provenance import Provenance


def as_downloaded(artifact: Path, workdir: Path) -> tuple[Path, Provenance, TrustedKeys]:
    """`artifact`'s files with `version.json` and `version.sig`, signed by a throwaway key trusted alone, and
    the provenance a bento built from them verifies at start."""
    create_key(workdir / "keys" / "signing.pem", workdir / "trusted" / "standin.pub")
    trust = Trust(trusted=TrustedKeys.from_folder(workdir / "trusted"),
                  signing_key=SigningKey.load(workdir / "keys" / "signing.pem"))
    registry = Registry.local(workdir / "registry", trust)
    record = registry.register("standin", artifact)
    downloaded = registry.download(record.name, record.version, workdir / "downloaded")
    return downloaded, Provenance(ref=record.ref, signature_required=True), trust.trusted
