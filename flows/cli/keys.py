"""`alignops keys …`: the key this user signs versions and approvals with, and the keys the platform trusts."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.errors import fail, user_errors
from flows.steps.output import echo

app = typer.Typer(help="Signing keys: yours, and the identities this platform trusts.", no_args_is_help=True)


@app.command("create")
@user_errors
def create(
    identity: Annotated[str, typer.Argument(help="the name your signatures and approvals carry, e.g. alice")],
    trust: Annotated[bool, typer.Option(help="also trust it here (one machine); a team adds it to the shared "
                                             "trusted keys instead")] = True,
) -> None:
    """Create your signing key (P-256, private, never overwritten) and its public key `IDENTITY.pub`."""
    from flows.steps.platform import Platform
    from registry.signing import IDENTITY

    if not IDENTITY.match(identity):
        fail(f"identity {identity[:80]!r}: letters, digits and _.@- only, at most 128 characters")
    platform = Platform.from_env()
    public = platform.create_signing_key(identity, trust=trust)
    echo(f"signing key {platform.signing_key} (keep it private); public key {public}"
         + (f", trusted as {identity!r}" if trust else f": add it to the trusted keys as {identity}.pub"))


@app.command("list")
@user_errors
def list_() -> None:
    """The trusted identities and their key fingerprints, and which one is yours."""
    from flows.steps.output import console, rich_table
    from flows.steps.platform import Platform
    from registry.signing import fingerprint

    platform = Platform.from_env()
    trust = platform.trust()
    mine = trust.signing_key.fingerprint if trust.signing_key else None
    console.print(rich_table(f"Trusted keys in {platform.trusted_keys}", ["identity", "fingerprint", "yours"], [
        (name, fingerprint(key)[:16], "yes" if fingerprint(key) == mine else "")
        for name, key in sorted(trust.trusted.keys.items())]))
    if mine is None:
        echo(f"You have no signing key ({platform.signing_key}): `alignops keys create NAME` makes one.")
    elif trust.signer_identity() is None:
        echo(f"Your key {mine[:16]} is not trusted here: versions you sign are refused until it is.")


@app.command("api-key")
@user_errors
def api_key(
    name: Annotated[str, typer.Argument(help="who the key is for (it names the caller in logs and limits)")],
    per_minute: Annotated[int | None, typer.Option(help="requests a minute for this key (default: "
                                                        "ALIGNOPS_RATE_LIMIT, else 600)")] = None,
) -> None:
    """Create an API key for served bentos: printed once, stored only as its sha256 (`alignops serve` passes the
    file to the bento; elsewhere give it as ALIGNOPS_API_KEYS_FILE, or its lines as the secret ALIGNOPS_API_KEYS)."""
    import os
    import secrets

    from flows.steps.platform import Platform
    from serving.auth import KEY_LINE, key_line, parse_key_lines

    path = Platform.from_env().api_keys
    existing = parse_key_lines(path.read_text(), 1) if path.exists() else []
    if any(key.name == name for key in existing):
        fail(f"an API key named {name!r} exists in {path}: pick another name, or remove its line first")
    key = f"alignops_{secrets.token_urlsafe(32)}"
    line = key_line(name, key, per_minute)
    if not KEY_LINE.match(line):
        fail(f"name {name[:80]!r}: letters, digits and _.@- only")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", opener=lambda p, flags: os.open(p, flags, 0o600)) as out:
        out.write(line + "\n")
    echo(key)
    echo(f"(the key above is shown once; {path} keeps only its sha256)", err=True)
