"""Smoke test of a built bento: serve it on 127.0.0.1, compare its embeddings with the artifact's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import bentoml
import httpx
import numpy as np
from bentoml.exceptions import InvalidArgument
from PIL import Image
from pydantic import BaseModel

from components.models.embedder import Embedder
from registry.local_s3 import free_port
from serving.auth import AUTH_VARIABLES

TOLERANCE = 1e-5
PROBE_TEXTS = ["two red circles on the left", "a blue square at the top", "three yellow triangles"]


class SmokeResult(BaseModel):
    bento_tag: str
    url: str
    text_max_abs_diff: float
    image_max_abs_diff: float
    rank_shape: tuple[int, int]
    classify_predictions: list[str]
    search_hits: int
    gallery: bool = True
    startup_s: float

    @property
    def passed(self) -> bool:
        return (max(self.text_max_abs_diff, self.image_max_abs_diff) <= TOLERANCE
                and self.rank_shape == (len(PROBE_TEXTS), len(PROBE_TEXTS))
                and len(self.classify_predictions) == len(PROBE_TEXTS) and (self.search_hits > 0 or not self.gallery))


class BentoServer:
    """`bentoml serve BENTO` on 127.0.0.1 in its own process group, stopped by PID on exit; `env` is the
    server's environment (default: this process's)."""

    def __init__(self, bento_tag: str, startup_timeout_s: float = 180, env: Mapping[str, str] | None = None):
        self.bento_tag, self.timeout = bento_tag, startup_timeout_s
        self.env = dict(os.environ if env is None else env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BentoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> BentoServer:
        """Start and wait until `/readyz` answers."""
        self.log = tempfile.TemporaryFile()
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", self.bento_tag, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**self.env, "BENTOML_DO_NOT_TRACK": "true"})
        while time.monotonic() - started < self.timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.process.returncode}:\n{self._output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        output = self._output()  # read before `stop` closes the log
        self.stop()
        raise TimeoutError(f"{self.bento_tag} was not ready within {self.timeout:.0f} s:\n{output}")

    def _output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM to the process group (the server finishes in-flight requests), SIGKILL after 20 s."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.log.close()


def probe_images(directory: Path) -> list[Path]:
    """PNG files (lossless, so the server decodes exactly the pixels encoded here)."""
    paths = []
    for i, colour in enumerate([(220, 40, 40), (40, 80, 220), (235, 200, 30)]):
        image = Image.new("RGB", (64, 64), (235, 235, 235))
        image.paste(colour, (8 + 12 * i, 16, 30 + 12 * i, 40))
        paths.append(directory / f"probe-{i}.png")
        image.save(paths[-1])
    return paths


def smoke_test(bento_tag: str, artifact_dir: Path, gallery: bool = True) -> SmokeResult:
    """Served embeddings must equal the artifact's; rank, classify and search must answer (without a
    gallery, search must refuse with its 400)."""
    reference = Embedder.load(artifact_dir)
    # On 127.0.0.1 and without the serving environment's credentials: the smoke test checks the model.
    local = {key: value for key, value in os.environ.items() if key not in AUTH_VARIABLES}
    with tempfile.TemporaryDirectory() as tmp, BentoServer(bento_tag, env=local) as server:
        images = probe_images(Path(tmp))
        with bentoml.SyncHTTPClient(server.url, timeout=60) as client:
            served_text = np.asarray(client.encode_text(texts=PROBE_TEXTS)["embeddings"])
            served_image = np.asarray(client.encode_image(images=images)["embeddings"])
            ranked = client.rank(texts=PROBE_TEXTS, images=images)
            classified = client.classify(images=images, labels=["red", "blue", "yellow"])
            hits = search_hits(client) if gallery else refused_search(client)
        return SmokeResult(
            bento_tag=bento_tag, url=server.url, startup_s=server.startup_s,
            text_max_abs_diff=float(np.abs(served_text - reference.encode_texts(PROBE_TEXTS)).max()),
            image_max_abs_diff=float(np.abs(served_image - reference.encode_images(images)).max()),
            rank_shape=np.asarray(ranked["similarity"]).shape, classify_predictions=classified["predictions"],
            search_hits=hits, gallery=gallery)


def search_hits(client: bentoml.SyncHTTPClient) -> int:
    return len(client.search(texts=PROBE_TEXTS[:1], k=3)["hits"][0])


def refused_search(client: bentoml.SyncHTTPClient) -> int:
    try:
        client.search(texts=PROBE_TEXTS[:1], k=3)
    except InvalidArgument as error:
        if "without a gallery" in str(error):
            return 0
        raise
    raise AssertionError("search answered although the bento has no gallery")
