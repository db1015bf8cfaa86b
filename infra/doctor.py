"""`alignops doctor`: what this machine and environment give alignops, each finding one line with what to do.

Every check is read-only and bounded in time (a store or server that does not answer within a few seconds is
reported, not waited on), so the doctor answers when something is wrong, which is when people run it."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from components.runtime import Settings
from core.secrets import redact
from registry.access import AccessPolicy
from registry.signing import SignatureInvalid, SigningKey, TrustedKeys

PACKAGES = ("torch", "lightning", "prefect", "bentoml", "dvc", "great-expectations", "wandb", "transformers")
MIN_FREE_GIB = 5.0
TIMEOUT_S = 5.0
LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Literal["ok", "warn", "fail"]
    detail: str  # what was found and, where it is not ok, what to do


def examine(settings: Settings) -> list[Finding]:
    return [python(), *packages(), state_directory(settings.home), free_disk(settings.home),
            registry(settings), signing(settings), dvc_remote(settings), prefect_api(), local_stack(settings.home)]


def python() -> Finding:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == (3, 11):
        return Finding("python", "ok", f"{version} ({sys.executable})")
    return Finding("python", "warn", f"{version}: alignops is tested on 3.11; make a 3.11 environment "
                                     "(`PYTHON=python3.11 make install`)")


def packages() -> list[Finding]:
    locked = _locked_versions()
    found = []
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            found.append(Finding(name, "fail", "not installed: run `make install`"))
            continue
        pinned = locked.get(name.lower())
        plain = version.split("+")[0]
        if pinned is not None and pinned != plain:
            found.append(Finding(name, "warn", f"{version}, but requirements.lock pins {pinned}: run `make install` "
                                               "(or `make lock` to take the upgrade on purpose)"))
        else:
            found.append(Finding(name, "ok", version + (_cuda() if name == "torch" else "")))
    return found


def _locked_versions() -> dict[str, str]:
    if not LOCK.is_file():
        return {}
    pins = (line.split("==", 1) for line in LOCK.read_text().splitlines() if "==" in line and not line.startswith("#"))
    return {name.strip().lower(): version.strip() for name, version in pins}


def _cuda() -> str:
    import torch

    if torch.cuda.is_available():
        return f"; CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}"
    return "; CPU only (training runs on the CPU: fine for the demo and small finetunes)"


def state_directory(home: Path) -> Finding:
    if not os.access(home, os.W_OK):
        return Finding("state directory", "fail", f"{home} is not writable: set ALIGNOPS_HOME to a folder you own")
    size = sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and not p.is_symlink())
    return Finding("state directory", "ok", f"{home} ({size / 2**30:.2f} GiB; ALIGNOPS_HOME moves it)")


def free_disk(home: Path) -> Finding:
    free = shutil.disk_usage(home).free / 2**30
    if free < MIN_FREE_GIB:
        return Finding("free disk", "warn", f"{free:.1f} GiB free where {home} lies: training runs and bentos "
                                            f"need several GiB; free space or move ALIGNOPS_HOME")
    return Finding("free disk", "ok", f"{free:.1f} GiB free")


def registry(settings: Settings) -> Finding:
    return _store("registry", settings.registry_url, "local directory; ALIGNOPS_REGISTRY=s3://bucket/prefix for S3")


def signing(settings: Settings) -> Finding:
    """Whose key this user signs with, whether the platform trusts it, and whether the access policy loads."""
    try:
        trusted = TrustedKeys.from_folder(settings.trusted_keys)
        if settings.access_policy:
            AccessPolicy.load(settings.access_policy)
        if not settings.signing_key.exists():
            return Finding("signing", "warn", f"no signing key at {settings.signing_key}: production takes only "
                                              "signed versions; `alignops keys create NAME` makes one")
        key = SigningKey.load(settings.signing_key, os.environ.get("ALIGNOPS_SIGNING_KEY_PASSWORD"))
    except SignatureInvalid as error:
        return Finding("signing", "fail", str(error))
    identity = trusted.identity(key.fingerprint)
    if identity is None:
        return Finding("signing", "warn", f"your key {key.fingerprint[:16]} is not among the {len(trusted.keys)} "
                                          f"trusted keys in {settings.trusted_keys}: what you sign is refused there")
    return Finding("signing", "ok", f"signing as {identity}; {len(trusted.keys)} trusted key(s) in "
                                    f"{settings.trusted_keys}")


def dvc_remote(settings: Settings) -> Finding:
    return _store("dvc remote", settings.dvc_remote_url, "local folder; ALIGNOPS_DVC_REMOTE=s3://… for S3")


def _store(check: str, url: str, local: str) -> Finding:
    """A local folder as it is; an S3 bucket asked whether it can be read."""
    if not url.startswith("s3://"):
        return Finding(check, "ok", f"{url} ({local})")
    try:
        _s3_reachable(url)
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        return Finding(check, "fail", f"{url} cannot be read ({redact(str(error))[:160]}): check "
                                      "AWS_ENDPOINT_URL_S3 and the credentials in the environment or profile")
    return Finding(check, "ok", f"{url} answers")


def _s3_reachable(url: str) -> None:
    import boto3
    from botocore.config import Config

    bucket = url.removeprefix("s3://").split("/", 1)[0]
    config = Config(connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S, retries={"max_attempts": 1})
    boto3.client("s3", config=config).head_bucket(Bucket=bucket)


def prefect_api() -> Finding:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return Finding("prefect api", "ok", "none configured: each command starts a temporary API (about 6 s); "
                                            "`alignops up` starts a lasting one with its UI")
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as error:
        return Finding("prefect api", "fail", f"{url} does not answer ({type(error).__name__}): start it "
                                              "(`alignops up`) or unset PREFECT_API_URL")
    return Finding("prefect api", "ok", f"{url} answers")


def local_stack(home: Path) -> Finding:
    from infra.stack import load_stack

    stack = load_stack(home)
    if stack is None:
        return Finding("local stack", "ok", "not running (`alignops up` starts it)")
    dead = [service.name for service in stack.services if not service.alive()]
    if dead:
        return Finding("local stack", "warn", f"recorded as running, but {', '.join(dead)} stopped: "
                                              "`alignops down`, then `alignops up`")
    return Finding("local stack", "ok", f"running; UI {stack.ui_url or stack.prefect_api_url}")
