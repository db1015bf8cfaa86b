"""Credentials never leave the process in text: URLs lose their user-info, and the values of the secret
environment variables are masked, wherever a message, a log line, a record or a committed file is made.
Credentials come only from the environment or AWS profiles."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "WANDB_API_KEY", "PREFECT_API_KEY",
                    "HF_TOKEN", "ALIGNOPS_DVC_PASSWORD")
MASK = "***"
# Bounded runs, anchored where a scheme can begin: unbounded ones backtracked quadratically, and a 100,000-
# character argument took 46 s to redact.
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)(?P<userinfo>[^/@\s]{1,1024})@")


def has_userinfo(url: str) -> bool:
    return bool(urlsplit(url).username or urlsplit(url).password)


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`, for what is committed or shown."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(text: str) -> str:
    """`text` with URL user-info and the secret environment variables' values masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", str(text))
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def redacted(value: object) -> object:
    """A JSON-like value (dicts, lists, strings) with `redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value
