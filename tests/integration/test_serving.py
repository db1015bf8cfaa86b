"""A real bento (front + batching encoder service) built from an artifact with a gallery, served by
`bentoml serve` on 127.0.0.1 and stopped by PID; bad requests get 4xx and the server keeps serving."""

import asyncio
import base64
import json
import re

import httpx
import numpy as np
import pytest
from corpus import bomb_png, jpeg_bytes, photo, png_bytes
from PIL import Image

from components.models.directory import ModelDirectory
from components.models.embedder import Embedder
from serving.package import build_bento, build_gallery, import_model
from serving.smoke import PROBE_TEXTS, BentoServer, probe_images, smoke_test
from serving.standin import as_downloaded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bento_tag(tiny_artifact, tiny_dataset, tmp_path_factory):
    gallery = build_gallery(ModelDirectory(path=str(tiny_artifact)), tiny_dataset, "test")
    downloaded, provenance, trusted = as_downloaded(tiny_artifact, tmp_path_factory.mktemp("registry"))
    model_tag = import_model(downloaded, "alignops-test", {"registry-version": "0"}, provenance=provenance,
                             trusted=trusted, gallery=gallery)
    return build_bento(model_tag, {"registry-model": "test"})


@pytest.fixture(scope="module")
def server(bento_tag):
    with BentoServer(bento_tag) as running:
        yield running
    assert running.process.poll() is not None  # stopped by PID


def post(server, route, **kwargs):
    return httpx.post(f"{server.url}/{route}", timeout=60, **kwargs)


def test_smoke_test_of_built_bento(bento_tag, tiny_artifact):
    result = smoke_test(bento_tag, tiny_artifact)
    assert result.passed and result.text_max_abs_diff <= 1e-5 and result.image_max_abs_diff <= 1e-5
    assert result.url.startswith("http://127.0.0.1:") and result.search_hits == 3


def test_an_onnx_bento_serves_the_artifacts_embeddings_through_onnxruntime(tiny_artifact, tmp_path_factory):
    import bentoml

    from components.interop.onnx import MANIFEST_FILE, ONNX_DIR, OPSET
    from serving.options import ServingOptions

    downloaded, provenance, trusted = as_downloaded(tiny_artifact, tmp_path_factory.mktemp("registry"))
    model_tag = import_model(downloaded, "alignops-onnx-test", {"registry-version": "0"}, provenance=provenance,
                             trusted=trusted, runtime="onnx")
    graphs = bentoml.models.get(model_tag).path_of(f"{ONNX_DIR}/{MANIFEST_FILE}")
    assert json.loads(open(graphs).read())["opset"] == OPSET
    result = smoke_test(build_bento(model_tag, {"registry-model": "test"}, ServingOptions(runtime="onnx")),
                        tiny_artifact, gallery=False)
    assert result.passed, result
    # onnxruntime's kernels round differently from PyTorch's: a served embedding equal to the artifact's to the
    # last bit would mean the towers ran in PyTorch
    assert 0 < max(result.text_max_abs_diff, result.image_max_abs_diff) <= 1e-5


def test_rank_classify_search_and_base64(server, tiny_artifact, tmp_path):
    images = probe_images(tmp_path)
    reference = Embedder.load(tiny_artifact)
    files = [("images", (p.name, p.read_bytes(), "image/png")) for p in images]
    ranked = post(server, "rank", data={"texts": json.dumps(PROBE_TEXTS[:2])}, files=files)
    assert ranked.status_code == 200, ranked.text
    expected = reference.encode_texts(PROBE_TEXTS[:2]) @ reference.encode_images(images).T
    np.testing.assert_allclose(ranked.json()["similarity"], expected, atol=1e-5)
    np.testing.assert_allclose(np.sum(ranked.json()["probabilities"], axis=1), 1.0, atol=1e-6)

    as_base64 = [base64.b64encode(p.read_bytes()).decode() for p in images]
    encoded = post(server, "encode_image", json={"images": [as_base64[0], "data:image/png;base64," + as_base64[1]]})
    assert encoded.status_code == 200, encoded.text
    np.testing.assert_allclose(encoded.json()["embeddings"], reference.encode_images(images[:2]), atol=1e-5)

    classified = post(server, "classify", json={"images": as_base64, "labels": ["red", "blue"],
                                                "templates": ["a {} thing"]})
    assert classified.status_code == 200 and len(classified.json()["predictions"]) == 3
    assert np.allclose(np.sum(classified.json()["probabilities"], axis=1), 1.0)
    found = post(server, "search", json={"texts": ["two red circles on the left"], "k": 4}).json()
    assert found["gallery_size"] == 20 and [h["rank"] for h in found["hits"][0]] == [1, 2, 3, 4]
    scores = [h["score"] for h in found["hits"][0]]
    assert scores == sorted(scores, reverse=True) and {"image_id", "caption"} <= set(found["hits"][0][0]["item"])
    by_image = post(server, "search_images", json={"images": as_base64[:1], "k": 2})
    assert by_image.status_code == 200 and len(by_image.json()["hits"][0]) == 2


def test_long_texts_are_truncated_and_said(server):
    long_text = " ".join(["red circle"] * 200)
    response = post(server, "encode_text", json={"texts": ["a blue square", long_text]})
    assert response.status_code == 200 and response.json()["truncated"] == [1]


def test_a_large_jpeg_gets_the_embedding_evaluation_gives_it(server, tiny_artifact, tmp_path):
    """Both decode a large JPEG at the same reduced scale (ImageTransform.draft)."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(photo(2000, 1500), quality=92))
    encoded = post(server, "encode_image", files=[("images", (path.name, path.read_bytes(), "image/jpeg"))])
    assert encoded.status_code == 200, encoded.text
    np.testing.assert_allclose(encoded.json()["embeddings"], Embedder.load(tiny_artifact).encode_images([path]),
                               atol=1e-5)


LARGE_JPEG = jpeg_bytes(photo(1024, 768), quality=92)
BAD_REQUESTS = [  # (route, request kwargs, words the 4xx message must contain)
    ("encode_image", {"files": [("images", ("a.png", b"plain text", "image/png"))]}, "not an image"),
    ("encode_image", {"files": [("images", ("a.png", png_bytes(Image.new("RGB", (64, 64)))[:60], "image/png"))]},
     "does not decode"),
    ("encode_image", {"files": [("images", ("a.jpg", LARGE_JPEG[:len(LARGE_JPEG) // 2], "image/jpeg"))]},
     "does not decode"),  # a truncated large JPEG, decoded at reduced scale
    ("encode_image", {"files": [("images", ("a.png", bomb_png(), "image/png"))]}, "pixels"),
    ("encode_image", {"json": {"images": ["/etc/hostname"]}}, "not base64"),
    ("encode_image", {"json": {"images": [base64.b64encode(b"junk!").decode()]}}, "not an image"),
    ("encode_image", {"json": {"images": []}}, "non-empty list"),
    ("encode_text", {"json": {"texts": []}}, "non-empty list"),
    ("encode_text", {"json": {"texts": ["a"] * 65}}, "over the limit of 64"),
    ("encode_text", {"json": {"texts": [" "]}}, "is empty"),
    ("encode_text", {"json": {"texts": "not a list"}}, ""),
    ("encode_text", {"json": {"texts": [42]}}, ""),
    ("encode_text", {"content": b"{broken json", "headers": {"content-type": "application/json"}}, ""),
    ("encode_image", {"data": {"images": "http://169.254.169.254/latest/meta-data/"}, "files": [
        ("other", ("x.txt", b"x", "text/plain"))]}, "URLs are not fetched"),
    ("encode_text", {"content": b'{"texts": []}', "headers": {"content-type": "multipart/form-data"}},
     "Missing boundary"),
    ("classify", {"json": {"images": [], "labels": ["x"]}}, "non-empty list"),
    ("classify", {"json": {"images": ["AAAA"], "labels": ["x"], "domain": "underwater"}}, "unknown domain"),
    ("search", {"json": {"k": 3}}, ""),
    ("search_images", {"json": {"images": [], "k": 3}}, "non-empty list"),
    ("search", {"json": {"texts": ["x"], "k": 1000}}, "k must be between"),
] + [("classify", {"json": {"images": ["AAAA"], "labels": ["x"], "templates": t}}, words) for t, words in [
    (["{:>100000000}{{}}"] * 5, "exactly one {} where the label goes"),  # 120 bytes that once cost ~0.5 GB
    (["{}{x}"], "no other braces"), (["{:>5}{}"], "no other braces"),
    (["a {}"] * 17, "over the limit of 16"), (["{} " + "x" * 300], "over the limit of 200")]]
HOSTILE_BODIES = [  # (route, request kwargs, status, words)
    ("encode_text", {"content": b'{"texts": ["' + b"x" * (65 * 2**20) + b'"]}',
                     "headers": {"content-type": "application/json"}}, 413, "over the limit of 67108864 bytes"),
    ("encode_image", {"files": [("images", ("a.png", b"\0" * (70 * 2**20), "image/png"))]}, 413, "over the limit"),
]


def server_rss(server) -> int:
    import psutil

    root = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def test_hostile_corpus_is_refused_without_growing_the_server(server):
    for route, kwargs, _ in BAD_REQUESTS[-5:]:  # warm the paths once, then measure
        post(server, route, **kwargs)
    before = server_rss(server)
    for _ in range(3):
        for route, kwargs, status, words in HOSTILE_BODIES:
            response = post(server, route, **kwargs)
            assert response.status_code == status and words in response.text, (response.status_code, response.text)
        for route, kwargs, _ in BAD_REQUESTS[-5:]:
            assert post(server, route, **kwargs).status_code == 400
    grown = server_rss(server) - before
    assert grown < 100 * 2**20, f"the server grew by {grown / 2**20:.0f} MiB on refused requests"
    assert post(server, "encode_text", json={"texts": ["still here"]}).status_code == 200


@pytest.mark.parametrize("route, kwargs, words", BAD_REQUESTS)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, route, kwargs, words):
    response = post(server, route, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert words in response.text
    assert post(server, "encode_text", json={"texts": ["still here"]}).status_code == 200


def test_readyz_metrics_and_openapi(server):
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert "bentoml_service_request" in httpx.get(f"{server.url}/metrics").text
    paths = httpx.get(f"{server.url}/docs.json").json()["paths"]
    assert {"/encode_text", "/encode_image", "/rank", "/classify", "/search", "/search_images"} <= set(paths)


def test_concurrent_requests_share_encoder_calls_and_each_gets_its_own_embedding(server, tiny_artifact):
    texts = [f"{'three ' * n}red circles on the left" for n in range(24)]  # lengths differ: padding in a batch

    async def send_at_once():
        async with httpx.AsyncClient(timeout=60) as http:
            return await asyncio.gather(*(http.post(f"{server.url}/encode_text", json={"texts": [t]}) for t in texts))

    before = batch_histogram(server)
    answers = asyncio.run(send_at_once())
    after = batch_histogram(server)
    assert all(a.status_code == 200 for a in answers)
    np.testing.assert_allclose([a.json()["embeddings"][0] for a in answers],
                               Embedder.load(tiny_artifact).encode_texts(texts), atol=1e-5)
    calls, items = after["count"] - before["count"], after["sum"] - before["sum"]
    assert items == len(texts) and calls < len(texts)  # every text encoded once, in fewer calls than requests


def batch_histogram(server) -> dict[str, float]:
    """Count and sum of the front's `alignops_encoder_batch_items` histogram for text calls."""
    metrics = httpx.get(f"{server.url}/metrics").text
    return {part: sum(float(v) for v in re.findall(
        rf'^alignops_encoder_batch_items_{part}{{[^}}]*endpoint="texts"[^}}]*}} (\S+)$', metrics, re.M))
        for part in ("count", "sum")}
