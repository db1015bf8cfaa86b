"""An artifact as a signed registry version delivers it, for the tests and benchmarks that build a bento
without a registry of their own (a bento serves only what verifies at start)."""

from __future__ import annotations

import os
from pathlib import Path

from registry.access import Trust
from registry.registry import Registry
from registry.signing import SigningKey, TrustedKeys, create_key
from serving.provenance import Provenance


def as_downloaded(artifact: Path, workdir: Path) -> tuple[Path, Provenance, TrustedKeys]:
    """`artifact`'s files with `version.json` and `version.sig`, and the provenance a bento built from them
    verifies at start. Signed with the key the environment names (`ALIGNOPS_SIGNING_KEY`, trusted in
    `ALIGNOPS_TRUSTED_KEYS`), which a bento served in that environment checks against; else with a
    throwaway key, trusted alone."""
    if os.environ.get("ALIGNOPS_SIGNING_KEY") and os.environ.get("ALIGNOPS_TRUSTED_KEYS"):
        key, trusted = Path(os.environ["ALIGNOPS_SIGNING_KEY"]), Path(os.environ["ALIGNOPS_TRUSTED_KEYS"])
    else:
        key, trusted = workdir / "keys" / "signing.pem", workdir / "trusted"
        create_key(key, trusted / "standin.pub")
    trust = Trust(trusted=TrustedKeys.from_folder(trusted), signing_key=SigningKey.load(key))
    registry = Registry.local(workdir / "registry", trust)
    record = registry.register("standin", artifact)
    downloaded = registry.download(record.name, record.version, workdir / "downloaded")
    return downloaded, Provenance(ref=record.ref, signature_required=True), trust.trusted
