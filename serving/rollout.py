"""Switch a served bento to a new version without dropping requests, on one machine.

A `Router` (an HTTP reverse proxy on the public port) sends each request to the active backend, a
`bentoml serve` process on its own port. Routing per request, not per connection, means a switch takes
effect at the next request even on a client's kept-alive connection. `rolling_switch` starts the new
version, waits until it is ready, points requests at it, waits until the old backend has no request
in flight, then stops it by PID. This is what a Kubernetes rolling update does with readiness probes
and a preStop pause (infra/kubernetes/embedding-service.yaml).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import aiohttp
import httpx
from aiohttp import web

from registry.local_s3 import free_port
from serving.smoke import BentoServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}


class Router:
    def __init__(self, backend_port: int, port: int | None = None):
        self.backend_port = backend_port
        self.in_flight: Counter[int] = Counter()  # backend port -> requests being answered
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def switch(self, backend_port: int) -> None:
        """Requests go to `backend_port` from now on; those in flight finish where they are."""
        self.backend_port = backend_port

    def wait_drained(self, backend_port: int, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.in_flight[backend_port] == 0:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._session = self._loop.run_until_complete(_client_session())
        ready.set()
        self._loop.run_forever()

    async def _forward(self, request: web.Request) -> web.Response:
        port = self.backend_port  # chosen once per request
        self.in_flight[port] += 1
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            async with self._session.request(request.method, f"http://127.0.0.1:{port}{request.rel_url}",
                                             headers=headers, data=await request.read()) as upstream:
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
        finally:
            self.in_flight[port] -= 1


async def _client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))  # needs the running loop


def warm_up(server: BentoServer, timeout_s: float = 120) -> None:
    """One request through both services before any client's: `/readyz` answers before the encoder's first
    batch has run, and that first batch is slow (lazy initialisation), slow enough to time clients out."""
    response = httpx.post(f"{server.url}/encode_text", json={"texts": ["warm-up"]}, timeout=timeout_s)
    response.raise_for_status()


class DrainTimeout(TimeoutError):
    """The old version did not drain in time; traffic already goes to `new`, and both are still running."""

    def __init__(self, message: str, new: BentoServer):
        super().__init__(message)
        self.new = new


def rolling_switch(router: Router, current: BentoServer, new_bento_tag: str,
                   drain_timeout_s: float = 30) -> BentoServer:
    """Start `new_bento_tag`, switch the router to it once ready, drain and stop `current`."""
    new = BentoServer(new_bento_tag).start()
    warm_up(new)
    router.switch(new.port)
    if not router.wait_drained(current.port, drain_timeout_s):
        raise DrainTimeout(f"{current.bento_tag} still had requests in flight after {drain_timeout_s:.0f} s; "
                           f"traffic goes to {new.bento_tag} already: stop the old server when it is idle", new)
    current.stop()
    return new
