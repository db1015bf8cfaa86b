"""Signed versions and signed statements, with the keys a platform trusts.

A version is signed in the OpenSSF model-signing format (the `model-signing` package, an in-toto statement
in a Sigstore bundle, signed with an elliptic-curve key): the statement lists every artifact file's sha256
and the sha256 of `version.json` itself, so rewriting files and record together, even with consistent
checksums, breaks it. The signature is stored as `version.sig` beside the record, and a downloaded version
folder (files + `version.json` + `version.sig`) verifies with the stock tool as well:

    model_signing verify key --signature DIR/version.sig --public_key KEY.pub DIR

Signing and verifying work from the digests the registry already holds (no file is hashed twice); the
package's internal signer and verifier are used for that, so its version is pinned exactly in
constraints.txt. Approvals are small JSON statements signed with the same keys (ECDSA over canonical JSON).

Keys come from files named by the platform's settings, never from the registry: a private key to sign
with, and a folder of trusted public keys, `<identity>.pub`, whose file names are the identities.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

RECORD = "version.json"
SIGNATURE = "version.sig"
RESERVED = (RECORD, SIGNATURE)  # names a downloaded version adds beside its files
MAX_KEY_BYTES = 16_384
MAX_TRUSTED_KEYS = 1_000
MAX_SIGNATURE_BYTES = 16 * 2**20  # a bundle lists one digest per file: far below this for any real model
CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model-signing accepts
IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": [SIGNATURE]}


class SignatureInvalid(RuntimeError):
    """A signature that does not verify, was made by a key nobody trusts, or is missing where one is required."""


def fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the PEM public key: the `hint` model-signing writes into a bundle."""
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_KEY_BYTES:
            raise SignatureInvalid(f"{what} {path} is {size} bytes, not a PEM key: point the setting at the key")
        return path.read_bytes()
    except OSError as error:
        raise SignatureInvalid(f"{what} {path} cannot be read ({error.strerror}): create it with `alignops keys "
                               "create`, or point the setting at an existing key") from None


def _checked_curve(key: ec.EllipticCurvePublicKey | object, path: Path) -> ec.EllipticCurvePublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise SignatureInvalid(f"{path} is not an elliptic-curve key on {', '.join(CURVES)}: model signing takes "
                               "only those; create one with `alignops keys create`")
    return key


@dataclass(frozen=True)
class SigningKey:
    """A private key this process signs with (a PEM file; its password, if any, from the environment)."""

    path: Path
    private: ec.EllipticCurvePrivateKey = field(repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, password: str | None = None) -> SigningKey:
        data = _read_key_file(Path(path), "the signing key")
        try:
            private = serialization.load_pem_private_key(data, password.encode() if password else None)
        except (ValueError, TypeError) as error:
            raise SignatureInvalid(f"the signing key {path} does not load ({error}): check the file and "
                                   "ALIGNOPS_SIGNING_KEY_PASSWORD") from None
        _checked_curve(getattr(private, "public_key", lambda: None)(), Path(path))
        return cls(Path(path), private, password)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private.public_key())

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign_bytes(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a platform trusts, by identity (`<identity>.pub` in one folder)."""

    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    folder: Path | None = None

    @classmethod
    def from_folder(cls, folder: Path) -> TrustedKeys:
        folder = Path(folder)
        if not folder.is_dir():
            return cls(folder=folder)
        files = sorted(p for p in folder.iterdir() if p.suffix == ".pub")
        if len(files) > MAX_TRUSTED_KEYS:
            raise SignatureInvalid(f"{folder} holds {len(files)} keys, over {MAX_TRUSTED_KEYS}: keep the trusted keys "
                                   "in a folder of their own")
        keys = {}
        for path in files:
            if not IDENTITY.match(path.stem):
                raise SignatureInvalid(f"trusted key {path.name}: the file name is the identity, letters, digits "
                                       "and _.@- only; rename it")
            if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
                raise SignatureInvalid(f"trusted key {path.name} links outside {folder}: copy the key in instead")
            try:
                loaded = serialization.load_pem_public_key(_read_key_file(path, "trusted key"))
            except ValueError as error:
                raise SignatureInvalid(f"trusted key {path} does not load ({error}): it must be a PEM public "
                                       "key") from None
            keys[path.stem] = _checked_curve(loaded, path)
        return cls(keys, folder)

    def identity(self, key_fingerprint: str) -> str | None:
        return next((name for name, key in self.keys.items() if fingerprint(key) == key_fingerprint), None)

    def key(self, key_fingerprint: str) -> ec.EllipticCurvePublicKey | None:
        name = self.identity(key_fingerprint)
        return None if name is None else self.keys[name]

    def where(self) -> str:
        return str(self.folder) if self.folder else "the trusted keys"


def signed_digests(files: dict[str, str], record: bytes) -> dict[str, str]:
    """What a version's signature covers: each file's sha256 and the record's."""
    return {**files, RECORD: hashlib.sha256(record).hexdigest()}


def sign_version(model: str, digests: dict[str, str], key: SigningKey) -> bytes:
    """A Sigstore bundle (model-signing v1.0 predicate) over `digests` (name -> sha256 hex)."""
    from model_signing import manifest
    from model_signing._hashing.hashing import Digest
    from model_signing._signing import sign_ec_key, signing

    items = [manifest.FileManifestItem(path=pathlib.PurePosixPath(name), digest=Digest("sha256", bytes.fromhex(d)))
             for name, d in sorted(digests.items())]
    built = manifest.Manifest(model, items, manifest.SerializationType.from_args(_SERIALIZATION))
    signature = sign_ec_key.Signer(key.path, key.password).sign(signing.Payload(built))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / SIGNATURE
        signature.write(out)
        return out.read_bytes()


def verify_version(ref: str, bundle: bytes, digests: dict[str, str], trusted: TrustedKeys) -> str:
    """The identity whose trusted key signed exactly `digests`; SignatureInvalid naming what failed."""
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    if len(bundle) > MAX_SIGNATURE_BYTES:
        raise SignatureInvalid(f"{ref}: its signature is {len(bundle)} bytes, over {MAX_SIGNATURE_BYTES}: refused")
    try:
        hint = json.loads(bundle)["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError):
        raise SignatureInvalid(f"{ref}: its signature is not a model-signing key bundle: refused") from None
    identity = trusted.identity(str(hint))
    if identity is None:
        raise SignatureInvalid(f"{ref} is signed by key {str(hint)[:16]}…, which is not among the trusted keys in "
                               f"{trusted.where()}: add the signer's public key there if you trust it")
    with tempfile.TemporaryDirectory() as tmp:
        sig_path, key_path = Path(tmp) / SIGNATURE, Path(tmp) / f"{identity}.pub"
        sig_path.write_bytes(bundle)
        key_path.write_bytes(trusted.keys[identity].public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
        try:
            signed = sign_ec_key.Verifier(key_path).verify(sign_sigstore_pb.Signature.read(sig_path))
        except (ValueError, KeyError, InvalidSignature) as error:
            raise SignatureInvalid(f"{ref}: its signature by {identity} does not verify ({type(error).__name__}): "
                                   "the signature was altered or made over other bytes; refused") from None
    found = {d.identifier: d.digest.digest_hex for d in signed.resource_descriptors()}
    if found != digests:
        differ = sorted(n for n in set(found) | set(digests) if found.get(n) != digests.get(n))
        raise SignatureInvalid(f"{ref}: {', '.join(differ[:3])}{' and more' if len(differ) > 3 else ''} differ from "
                               f"what {identity} signed: the files or the record were rewritten after signing; "
                               "refused")
    return identity


def canonical(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def verify_statement(statement: dict, signature: str, key_fingerprint: str, trusted: TrustedKeys) -> str | None:
    """The trusted identity that signed `statement`, or None (an unknown key or a signature that fails)."""
    key = trusted.key(key_fingerprint)
    if key is None:
        return None
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(statement), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return None
    return trusted.identity(key_fingerprint)


def create_key(private_path: Path, public_path: Path) -> SigningKey:
    """A new P-256 key pair: the private key 0600, never overwritten."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(private_path, "xb", opener=lambda p, flags: os.open(p, flags, 0o600)) as out:
        out.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    key = SigningKey(private_path, private)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(key.public_pem())
    return key
