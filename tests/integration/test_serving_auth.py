"""A served bento that requires a credential: API keys (stored hashed) and OIDC tokens checked against a JWKS
served on 127.0.0.1, per-caller rate limits, and no body read before the caller is known. One real
`bentoml serve`, one front worker (limits are per front process)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from registry.local_s3 import free_port
from serving.auth import key_line
from serving.options import ServingOptions
from serving.package import build_bento, import_model
from serving.smoke import BentoServer
from serving.standin import as_downloaded

pytestmark = pytest.mark.slow
KEY, LIMITED = "alignops_test-key", "alignops_limited-key"
ISSUER, AUDIENCE = "https://issuer.example", "alignops-bento"


@pytest.fixture(scope="module")
def signing_keys():
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("good", "other")}


@pytest.fixture(scope="module")
def jwks_url(signing_keys):
    """The issuer's JWKS on 127.0.0.1 (only the "good" key is published)."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_keys["good"].public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "good", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


@pytest.fixture(scope="module")
def server(tiny_artifact, tmp_path_factory, jwks_url):
    downloaded, provenance, trusted = as_downloaded(tiny_artifact, tmp_path_factory.mktemp("registry"))
    tag = build_bento(import_model(downloaded, "alignops-auth", {}, provenance=provenance, trusted=trusted), {},
                      ServingOptions(front_workers=1))
    keys = tmp_path_factory.mktemp("keys") / "api-keys"
    keys.write_text(f"{key_line('ci', KEY)}\n{key_line('limited', LIMITED, 3)}\n")
    assert KEY not in keys.read_text()  # only digests are stored
    env = {"ALIGNOPS_API_KEYS_FILE": str(keys), "ALIGNOPS_OIDC_JWKS_URL": jwks_url, "ALIGNOPS_OIDC_ISSUER": ISSUER,
           "ALIGNOPS_OIDC_AUDIENCE": AUDIENCE, "ALIGNOPS_OIDC_SCOPE": "embed"}
    with BentoServer(tag, env={**os.environ, **env}) as running:
        yield running


def post(server, headers=None, texts=("a red square",)):
    return httpx.post(f"{server.url}/encode_text", json={"texts": list(texts)}, headers=headers or {}, timeout=60)


def token(signing_keys, kid="good", **claims):
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": int(time.time()) + 300, "scope": "embed",
              **claims}
    return jwt.encode(claims, signing_keys[kid], algorithm="RS256", headers={"kid": kid})


def test_no_key_or_a_wrong_key_is_401_and_a_known_key_is_200(server):
    missing = post(server)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "a credential is required" in missing.json()["error"]
    assert post(server, {"X-API-Key": "alignops_guess"}).status_code == 401
    served = post(server, {"X-API-Key": KEY})
    assert served.status_code == 200 and len(served.json()["embeddings"]) == 1
    assert post(server, {"Authorization": f"Bearer {KEY}"}).status_code == 401  # with OIDC on, Bearer is a token
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200  # probes stay open


def test_a_key_past_its_rate_gets_429_with_retry_after(server):
    answers = [post(server, {"X-API-Key": LIMITED}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert post(server, {"X-API-Key": KEY}).status_code == 200  # another caller is not held back


def test_oidc_tokens_are_checked_for_signature_issuer_audience_and_scope(server, signing_keys):
    assert post(server, {"Authorization": f"Bearer {token(signing_keys)}"}).status_code == 200
    assert post(server, {"Authorization": f"Bearer {token(signing_keys, scope='read')}"}).status_code == 403
    for bad in (token(signing_keys, iss="https://elsewhere"), token(signing_keys, aud="another-service"),
                token(signing_keys, exp=int(time.time()) - 10), token(signing_keys, kid="other")):
        assert post(server, {"Authorization": f"Bearer {bad}"}).status_code == 401


def raw_request(server, headers: str) -> tuple[bytes, float]:
    """Send a request's headers and none of the body it declares; the answer and how long it took."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        started = time.monotonic()
        connection.sendall(headers.encode())
        answer = connection.recv(4096)
        return answer, time.monotonic() - started


def test_the_caller_is_judged_before_any_body_byte_is_read(server):
    # A body declared but never sent: a server that read it first would wait (and then time out).
    declared = ("POST /encode_text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 500000\r\n\r\n")
    answer, took = raw_request(server, declared)
    assert answer.startswith(b"HTTP/1.1 401") and took < 10
    # A body over the size limit is still a 401 to a caller without a key (the limit never looks).
    huge = declared.replace("500000", str(10**10))
    assert raw_request(server, huge)[0].startswith(b"HTTP/1.1 401")
    keyed = declared.replace("Host: x", f"Host: x\r\nX-API-Key: {KEY}").replace("500000", str(10**10))
    assert raw_request(server, keyed)[0].startswith(b"HTTP/1.1 413")  # the known caller meets the body limit


def test_key_lines_keep_only_digests():
    line = key_line("ops", "secret-value", 30)
    assert line == f"ops:{hashlib.sha256(b'secret-value').hexdigest()}:30" and "secret-value" not in line


def test_a_bento_whose_files_and_record_were_rewritten_together_refuses_to_start(tiny_artifact, tmp_path):
    """After packaging, the weights and `version.json` inside the bento's model are replaced with consistent
    checksums: the signature no longer covers them, and the bento does not serve."""
    import bentoml

    downloaded, provenance, trusted = as_downloaded(tiny_artifact, tmp_path / "registry")
    model_tag = import_model(downloaded, "alignops-tampered", {}, provenance=provenance, trusted=trusted)
    tag = build_bento(model_tag, {}, ServingOptions(front_workers=1))
    model = Path(bentoml.models.get(model_tag).path)
    weights = (model / "model.safetensors").read_bytes()
    rewritten = weights[:-8] + bytes(8)  # the same size, other numbers
    (model / "model.safetensors").write_bytes(rewritten)
    record = json.loads((model / "version.json").read_text())
    record["files"]["model.safetensors"]["sha256"] = hashlib.sha256(rewritten).hexdigest()
    (model / "version.json").write_text(json.dumps(record))
    # BentoML restarts a worker whose start failed, so the server never becomes ready (a pod never joins its
    # service); its log names the version and what failed. Read the log until it does, then stop the server.
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        deadline, said = time.monotonic() + 180, ""
        while "differ from what" not in said and time.monotonic() < deadline and process.poll() is None:
            said += process.stdout.readline()
        assert "standin:1: model.safetensors, version.json differ from what pytest signed" in said
        with pytest.raises(httpx.HTTPError):  # nothing answers on its port: no worker started
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).raise_for_status()
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
