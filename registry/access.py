"""Who may do what in a registry: the access policy (which aliases need signed versions and approvals), the
keys this process signs with and trusts, and who the caller is.

The registry on its own is permissive (no keys, no requirements), so a library user and its own tests
opt in; the platform's settings (`components.runtime.Settings.trust`) give every CLI command and flow the
strict default: `production` holds only signed versions.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.names import check_name
from registry.signing import SignatureInvalid, SigningKey, TrustedKeys

ALL_VERSIONS = "*"
MAX_POLICY_BYTES = 65_536


class AccessPolicy(BaseModel):
    """What an alias demands of the version moved to it (YAML, e.g. infra/security/access.yaml)."""

    model_config = ConfigDict(extra="forbid")

    signatures_required_for: list[str] = Field(default_factory=list, max_length=100, description=(
        "aliases whose holders must carry a signature by a trusted key; `*`: every version, everywhere"))
    approvals: dict[str, int] = Field(default_factory=dict, max_length=100, description=(
        "alias -> how many signed approvals by distinct trusted identities a move to it needs (forced ones too)"))
    distinct_from: list[Literal["registrant", "trainer"]] = Field(
        default_factory=lambda: ["registrant", "trainer"],
        description="whose approval does not count: the identity that registered (signed) the version, and the "
                    "one that trained it")

    def model_post_init(self, _context) -> None:
        for alias in [*self.approvals, *(a for a in self.signatures_required_for if a != ALL_VERSIONS)]:
            check_name(alias, "alias")
        for alias, count in self.approvals.items():
            if not 0 <= count <= 10:
                raise ValueError(f"approvals for {alias!r} must be 0 to 10, not {count}")

    def requires_signature(self, aliases: list[str] | tuple[str, ...]) -> bool:
        return ALL_VERSIONS in self.signatures_required_for or any(
            a in self.signatures_required_for for a in aliases)

    @classmethod
    def load(cls, path: Path) -> AccessPolicy:
        path = Path(path)
        try:
            if path.stat().st_size > MAX_POLICY_BYTES:
                raise SignatureInvalid(f"access policy {path} is over {MAX_POLICY_BYTES} bytes: is it the right file?")
            return cls.model_validate(yaml.safe_load(path.read_text()) or {})
        except OSError as error:
            raise SignatureInvalid(f"access policy {path} cannot be read ({error.strerror}): fix "
                                   "ALIGNOPS_ACCESS_POLICY or unset it for the default") from None
        except (ValidationError, ValueError, yaml.YAMLError) as error:
            first = str(error).splitlines()[0:3]
            raise SignatureInvalid(f"access policy {path} is invalid ({' '.join(first)}): fix it, see "
                                   "docs/security.md") from None


# The platform's default: production holds only signed versions; approvals are opt-in.
PLATFORM_POLICY = AccessPolicy(signatures_required_for=["production"])


VerifiedBy = Literal["sts", "signature", "label"]


@dataclass(frozen=True)
class Actor:
    """Who is acting, and how that is known: the S3 caller from STS, a signing key the platform trusts, or
    only a label (`ALIGNOPS_ACTOR`, else the login name) on a local store."""

    name: str
    verified_by: VerifiedBy

    @classmethod
    def label(cls) -> Actor:
        return cls(os.environ.get("ALIGNOPS_ACTOR") or getpass.getuser(), "label")


@dataclass(frozen=True)
class Trust:
    """The keys this process signs with and trusts, and the policy it enforces."""

    trusted: TrustedKeys = field(default_factory=TrustedKeys)
    signing_key: SigningKey | None = None
    policy: AccessPolicy = field(default_factory=AccessPolicy)

    def signer_identity(self) -> str | None:
        """The trusted identity of this process's signing key (None without a key, or with an untrusted one)."""
        return None if self.signing_key is None else self.trusted.identity(self.signing_key.fingerprint)

    def need_signing_key(self, what: str) -> SigningKey:
        if self.signing_key is None:
            raise SignatureInvalid(f"{what} needs a signing key: create one with `alignops keys create NAME` (or set "
                                   "ALIGNOPS_SIGNING_KEY to a PEM private key)")
        return self.signing_key
