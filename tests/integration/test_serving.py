"""A real bento built from an artifact, served by `bentoml serve` on 127.0.0.1, stopped by PID."""

import json

import httpx
import numpy as np
import pytest

from components.models.embedder import Embedder
from serving.package import build_bento, import_model
from serving.smoke import PROBE_TEXTS, BentoServer, smoke_test

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bento_tag(tiny_artifact):
    model_tag = import_model(tiny_artifact, "alignops-test", {"registry-version": "0"})
    return build_bento(model_tag, {"registry-model": "test"})


def test_smoke_test_of_built_bento(bento_tag, tiny_artifact):
    result = smoke_test(bento_tag, tiny_artifact)
    assert result.passed and result.text_max_abs_diff <= 1e-5 and result.image_max_abs_diff <= 1e-5
    assert result.url.startswith("http://127.0.0.1:")


def test_rank_and_bad_requests(bento_tag, tiny_artifact, tmp_path):
    from serving.smoke import probe_images

    images = probe_images(tmp_path)
    reference = Embedder.load(tiny_artifact)
    with BentoServer(bento_tag) as server:
        files = [("images", (p.name, p.read_bytes(), "image/png")) for p in images]
        ranked = httpx.post(f"{server.url}/rank", data={"texts": json.dumps(PROBE_TEXTS[:2])},
                            files=files, timeout=30)
        assert ranked.status_code == 200, ranked.text
        body = ranked.json()
        expected = reference.encode_texts(PROBE_TEXTS[:2]) @ reference.encode_images(images).T
        np.testing.assert_allclose(body["similarity"], expected, atol=1e-5)
        np.testing.assert_allclose(np.sum(body["probabilities"], axis=1), 1.0, atol=1e-6)

        empty = httpx.post(f"{server.url}/rank", data={"texts": "[]"}, files=files, timeout=30)
        assert 400 <= empty.status_code < 500 and "texts must be a non-empty list" in empty.text
        wrong_type = httpx.post(f"{server.url}/encode_text", json={"texts": 42}, timeout=30)
        assert 400 <= wrong_type.status_code < 500
        still_up = httpx.post(f"{server.url}/encode_text", json={"texts": ["a red circle"]}, timeout=30)
        assert still_up.status_code == 200 and len(still_up.json()[0]) == reference.artifact.config.embed_dim
    assert server.process.poll() is not None  # stopped by PID
