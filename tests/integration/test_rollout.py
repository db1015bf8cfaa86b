"""Switching a served bento to a new version under load drops no request."""

import threading
import time

import httpx
import numpy as np
import pytest
import torch

from components.models.artifact import ModelArtifact
from components.models.embedder import Embedder
from serving.package import build_bento, import_model
from serving.rollout import DrainTimeout, Router, rolling_switch
from serving.smoke import BentoServer
from serving.standin import as_downloaded

pytestmark = pytest.mark.slow
TEXT = "two red circles on the left"


@pytest.fixture(scope="module")
def two_versions(tiny_artifact, tmp_path_factory):
    """Two bentos whose models differ (version 2 has re-drawn projections)."""
    artifact = ModelArtifact.load(tiny_artifact)
    torch.manual_seed(1)
    torch.nn.init.normal_(artifact.model.text_projection.weight, std=0.05)
    second = artifact.save(tmp_path_factory.mktemp("v2") / "artifact")
    tags, references = [], []
    for n, directory in enumerate((tiny_artifact, second), start=1):
        downloaded, provenance, trusted = as_downloaded(directory, tmp_path_factory.mktemp(f"registry-{n}"))
        tags.append(build_bento(import_model(downloaded, "alignops-rollout", {"registry-version": str(n)},
                                             provenance=provenance, trusted=trusted), {}))
        references.append(Embedder.load(directory).encode_texts([TEXT])[0])
    return tags, references


def test_rolling_switch_under_load_drops_nothing(two_versions):
    (first_tag, second_tag), references = two_versions
    answers, failures, stop = [], [], threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:  # keep-alive connections, as real clients use
            while not stop.is_set():
                try:
                    response = http.post(f"{router.url}/encode_text", json={"texts": [TEXT]})
                    if response.status_code != 200:
                        failures.append(response.status_code)
                        continue
                    got = np.asarray(response.json()["embeddings"][0])
                    answers.append(int(np.argmin([np.abs(got - ref).max() for ref in references])) + 1)
                except httpx.HTTPError as error:
                    failures.append(repr(error))

    first = BentoServer(first_tag).start()
    router = Router(first.port)
    threads = [threading.Thread(target=client) for _ in range(4)]
    second = None
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        try:
            second = rolling_switch(router, first, second_tag)
        except DrainTimeout as error:
            error.new.stop()  # leave no server behind
            raise
        switched_at = len(answers)
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        router.close()
        if second is None:
            first.stop()
    try:
        assert failures == []
        assert first.process.poll() is not None  # the old version was stopped, by PID
        assert answers[:10] == [1] * 10 and set(answers[switched_at + 20:]) == {2}
        assert len(answers) > 50
    finally:
        second.stop()
