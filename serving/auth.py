"""Who may call a bento: API keys (stored only as sha256 digests) or OIDC bearer tokens verified against the
issuer's JWKS, each caller held to a request rate. An ASGI middleware outside every other, so a request is
judged from its headers alone: 401 (no or a bad credential), 403 (a valid token without the required scope)
or 429 (over the caller's rate) is answered without reading a byte of the body, and the connection closed.

Configured from the serving environment, read once at start:

    ALIGNOPS_API_KEYS_FILE   a file of `name:sha256hex[:per_minute]` lines (`alignops keys api-key` adds one)
    ALIGNOPS_API_KEYS        the same lines, from a secret store, instead of a file
    ALIGNOPS_OIDC_JWKS_URL   the issuer's JWKS; with ALIGNOPS_OIDC_ISSUER and ALIGNOPS_OIDC_AUDIENCE
    ALIGNOPS_OIDC_SCOPE      a scope tokens must carry (403 without it)
    ALIGNOPS_RATE_LIMIT      requests per minute per caller where a key line names none (default 600)

With none set the bento answers everyone, which `alignops serve` allows only on 127.0.0.1. Health and
readiness probes stay open (a load balancer has no key). Limits are per front process: a bento with N front
workers lets a caller make up to N times the rate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

AUTH_VARIABLES = ("ALIGNOPS_API_KEYS_FILE", "ALIGNOPS_API_KEYS", "ALIGNOPS_OIDC_JWKS_URL", "ALIGNOPS_OIDC_ISSUER",
                  "ALIGNOPS_OIDC_AUDIENCE", "ALIGNOPS_OIDC_SCOPE", "ALIGNOPS_RATE_LIMIT")
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
DEFAULT_PER_MINUTE = 600
MAX_KEYS = 10_000
MAX_KEYS_BYTES = 2 * 2**20
MAX_TOKEN_BYTES = 8_192
KEY_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}):(?P<digest>[0-9a-f]{64})"
                      r"(?::(?P<rate>[0-9]{1,7}))?$")


class AuthConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str
    per_minute: int


@dataclass(frozen=True)
class Oidc:
    jwks_url: str
    issuer: str
    audience: str
    scope: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    keys: tuple[ApiKey, ...] = ()
    oidc: Oidc | None = None
    per_minute: int = DEFAULT_PER_MINUTE

    @property
    def enabled(self) -> bool:
        return bool(self.keys) or self.oidc is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        per_minute = int(env.get("ALIGNOPS_RATE_LIMIT") or DEFAULT_PER_MINUTE)
        text = env.get("ALIGNOPS_API_KEYS") or ""
        if path := env.get("ALIGNOPS_API_KEYS_FILE"):
            if not Path(path).is_file():
                raise AuthConfigError(f"ALIGNOPS_API_KEYS_FILE {path} does not exist: create a key with `alignops keys "
                                      "api-key NAME`, or unset it")
            if Path(path).stat().st_size > MAX_KEYS_BYTES:
                raise AuthConfigError(f"ALIGNOPS_API_KEYS_FILE {path} is over {MAX_KEYS_BYTES} bytes: not a key file")
            text += "\n" + Path(path).read_text()
        keys = tuple(parse_key_lines(text, per_minute))
        oidc = None
        if url := env.get("ALIGNOPS_OIDC_JWKS_URL"):
            if not (env.get("ALIGNOPS_OIDC_ISSUER") and env.get("ALIGNOPS_OIDC_AUDIENCE")):
                raise AuthConfigError("ALIGNOPS_OIDC_JWKS_URL needs ALIGNOPS_OIDC_ISSUER and ALIGNOPS_OIDC_AUDIENCE: "
                                      "a token is checked for both")
            oidc = Oidc(url, env["ALIGNOPS_OIDC_ISSUER"], env["ALIGNOPS_OIDC_AUDIENCE"],
                        env.get("ALIGNOPS_OIDC_SCOPE") or None)
        return cls(keys, oidc, per_minute)


def parse_key_lines(text: str, per_minute: int) -> list[ApiKey]:
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = KEY_LINE.match(line)
        if match is None:
            raise AuthConfigError(f"API key line {number} is not `name:sha256hex[:per_minute]`: fix or remove it "
                                  "(the key itself is never stored, only its sha256)")
        keys.append(ApiKey(match["name"], match["digest"], int(match["rate"] or per_minute)))
    if len(keys) > MAX_KEYS:
        raise AuthConfigError(f"{len(keys)} API keys, over {MAX_KEYS}")
    return keys


def key_line(name: str, key: str, per_minute: int | None = None) -> str:
    """The stored form of a new key: its name and sha256, never the key."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{name}:{digest}" + (f":{per_minute}" if per_minute else "")


@dataclass
class RateLimiter:
    """A sliding one-minute window per caller."""

    seen: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, caller: str, per_minute: int, now: float | None = None) -> float:
        """0 when the request may go on, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self.lock:
            recent = [t for t in self.seen.get(caller, []) if now - t < 60.0]
            if len(recent) >= per_minute:
                self.seen[caller] = recent
                return 60.0 - (now - recent[0])
            recent.append(now)
            self.seen[caller] = recent
            return 0.0


class Denied(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class Authenticator:
    """Turns a request's headers into a caller name and rate, or a `Denied`."""

    def __init__(self, config: AuthConfig):
        self.config = config
        self.by_digest = {key.digest: key for key in config.keys}
        self._jwks = None
        if config.oidc is not None:
            import jwt

            self._jwks = jwt.PyJWKClient(config.oidc.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def caller(self, headers: Mapping[bytes, bytes]) -> tuple[str, int]:
        api_key = headers.get(b"x-api-key")
        authorization = headers.get(b"authorization", b"")
        token = authorization[7:].strip() if authorization[:7].lower() == b"bearer " else None
        if api_key is None and token is not None and self.by_digest and self._jwks is None:
            api_key = token  # `Authorization: Bearer <api key>` where only keys are configured
        if api_key is not None:
            digest = hashlib.sha256(api_key.strip()).hexdigest()
            for known, key in self.by_digest.items():
                if hmac.compare_digest(known, digest):
                    return f"key:{key.name}", key.per_minute
            raise Denied(401, "unknown API key")
        if token is not None and self._jwks is not None:
            return self._token_caller(token)
        raise Denied(401, "a credential is required: send `X-API-Key: <key>` or `Authorization: Bearer <token>`")

    def _token_caller(self, token: bytes) -> tuple[str, int]:
        import jwt

        if len(token) > MAX_TOKEN_BYTES:
            raise Denied(401, "bearer token too long")
        oidc = self.config.oidc
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token.decode("ascii"))
            claims = jwt.decode(token, signing_key.key, algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                                audience=oidc.audience, issuer=oidc.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, UnicodeDecodeError) as error:
            raise Denied(401, f"invalid bearer token ({type(error).__name__})") from None
        scopes = str(claims.get("scope", "")).split()
        if oidc.scope and oidc.scope not in scopes:
            raise Denied(403, f"the token lacks the scope {oidc.scope!r}")
        return f"oidc:{claims['sub']}", self.config.per_minute


class Authenticate:
    """ASGI middleware: authenticate and rate-limit from the headers, before the body is read."""

    def __init__(self, app, config: AuthConfig | None = None):
        self.app = app
        self.config = config or AuthConfig.from_env()
        self.authenticator = Authenticator(self.config) if self.config.enabled else None
        self.limiter = RateLimiter()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.authenticator is None or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        try:
            caller, per_minute = self.authenticator.caller(dict(scope.get("headers") or []))
            wait = self.limiter.allow(caller, per_minute)
            if wait:
                raise Denied(429, f"over {per_minute} requests a minute: retry later", retry_after=wait)
        except Denied as denied:
            return await _deny(send, denied)
        scope.setdefault("state", {})["caller"] = caller
        return await self.app(scope, receive, send)


async def _deny(send, denied: Denied) -> None:
    body = json.dumps({"error": denied.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # the body the client may still be sending is never read
    if denied.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="alignops"'))
    if denied.retry_after is not None:
        headers.append((b"retry-after", str(max(1, int(denied.retry_after + 0.999))).encode()))
    await send({"type": "http.response.start", "status": denied.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
