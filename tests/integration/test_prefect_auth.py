"""The stack's servers and credentials: Prefect's server started with an auth string answers only clients that
present it, and nothing listens beyond 127.0.0.1 without a credential."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from cli_invoke import invoke

from infra.stack import prefect_headers
from registry.local_s3 import free_port
from serving.auth import key_line

pytestmark = pytest.mark.slow
AUTH = "admin:s3cret-for-this-test"


def test_up_and_serve_refuse_to_listen_beyond_loopback_without_a_credential(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    refused = invoke("up", "--host", "0.0.0.0")
    assert refused.exit_code == 1
    assert "the Prefect server would listen on 0.0.0.0 with no credential" in refused.output
    assert "PREFECT_SERVER_API_AUTH_STRING" in refused.output
    keys = tmp_path / "api-keys"
    keys.write_text("")
    monkeypatch.setenv("ALIGNOPS_API_KEYS_FILE", str(keys))
    served = invoke("serve", "alignops-any:latest", "--host", "0.0.0.0")
    assert served.exit_code == 1 and "the bento would listen on 0.0.0.0 with no credential" in served.output
    # A key made with `alignops keys api-key` is shown once and stored as its digest only.
    created = invoke("keys", "api-key", "ci", "--per-minute", "30")
    key = created.stdout.strip()
    assert created.exit_code == 0 and key.startswith("alignops_")
    assert keys.read_text() == key_line("ci", key, 30) + "\n" and key not in keys.read_text()
    assert invoke("keys", "api-key", "ci").exit_code == 1  # one key per name


def test_prefects_server_with_an_auth_string_refuses_a_client_without_it(tmp_path, monkeypatch):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_API_AUTH_STRING": AUTH,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": api}
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:  # probes stay open
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert httpx.post(f"{api}/flows/filter", json={}, timeout=10).status_code == 401
        monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", AUTH)
        assert httpx.post(f"{api}/flows/filter", json={}, headers=prefect_headers(), timeout=10).status_code == 200
        # Prefect's own client, as the worker and the CLI run it with the credential `up` hands them.
        check = ("from prefect.client.orchestration import get_client\n"
                 "with get_client(sync_client=True) as c: print(len(c.read_flows()))")
        with_it = subprocess.run([sys.executable, "-c", check], env={**env, "PREFECT_API_AUTH_STRING": AUTH},
                                 capture_output=True, text=True, timeout=120)
        assert with_it.returncode == 0 and with_it.stdout.strip() == "0", with_it.stderr[-2000:]
        without = subprocess.run([sys.executable, "-c", check], env={**env, "PREFECT_API_AUTH_STRING": "admin:guess"},
                                 capture_output=True, text=True, timeout=120)
        assert without.returncode != 0 and "401" in without.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
