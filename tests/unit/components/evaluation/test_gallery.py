"""Gallery search by FAISS: exact search agrees with a plain matrix product, IVF finds what exact search finds
on clustered data, a saved gallery answers exactly as before, and what it is given is bounded."""

from __future__ import annotations

import numpy as np
import pytest

from components.evaluation.gallery import Gallery, IndexParams


def clustered(n: int, dim: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(clusters, dim))[rng.integers(0, clusters, n)] + 0.4 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def items(n: int) -> list[dict]:
    return [{"image_id": str(i)} for i in range(n)]


def test_exact_search_is_the_matrix_product_top_k():
    gallery, queries = clustered(500), clustered(20, seed=1)
    found = Gallery.build(gallery, items(500)).search(queries, 7)
    scores = queries @ gallery.T
    for row, answer in zip(scores, found, strict=True):
        expected = np.argsort(-row, kind="stable")[:7]
        assert [i for i, _ in answer] == expected.tolist()
        np.testing.assert_allclose([s for _, s in answer], row[expected], rtol=1e-5, atol=1e-6)


def test_ivf_recalls_what_exact_search_finds_and_records_its_parameters():
    vectors = clustered(6000)
    ivf = Gallery.build(vectors, items(6000), exact_up_to=1000)
    assert ivf.indexed and ivf.params.kind == "ivf" and ivf.params.nlist == int(4 * np.sqrt(6000))
    queries = vectors[:100] + 0.05 * np.random.default_rng(2).normal(size=(100, 32)).astype(np.float32)
    exact = Gallery(vectors, items(6000)).search(queries, 10)
    approximate = ivf.search(queries, 10)
    recall = np.mean([len({i for i, _ in a} & {i for i, _ in e}) / 10 for a, e in zip(approximate, exact,
                                                                                        strict=True)])
    assert recall >= 0.9


def test_a_saved_gallery_loads_to_the_same_answers(tmp_path):
    vectors = clustered(3000)
    built = Gallery.build(vectors, items(3000), exact_up_to=100, seed=3)
    built.save(tmp_path / "g")
    loaded = Gallery.load(tmp_path / "g")
    assert loaded.params == built.params and loaded.items == built.items
    np.testing.assert_array_equal(loaded.centroids, built.centroids)
    queries = clustered(30, seed=4)
    assert loaded.search(queries, 5) == built.search(queries, 5)
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["embeddings.safetensors", "index.json",
                                                                   "items.json"]


def test_k_beyond_the_gallery_returns_every_item_once():
    answer = Gallery.build(clustered(4), items(4)).search(clustered(1, seed=5), 10)
    assert sorted(i for i, _ in answer[0]) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad, message", [
    (lambda v: Gallery(v, items(len(v) - 1)), "one item per embedding"),
    (lambda v: Gallery(np.where(np.arange(len(v))[:, None] == 3, np.nan, v), items(len(v))), "finite"),
    (lambda v: Gallery(v, items(len(v))).search(v[:, :8], 3), "8 dimensions"),
    (lambda v: Gallery(v, items(len(v))).search(v, 0), "k must be between"),
    (lambda v: Gallery(v, items(len(v)), IndexParams(kind="ivf", nlist=4), np.zeros((3, 32))), "damaged"),
])
def test_what_does_not_fit_is_refused_with_the_reason(bad, message):
    with pytest.raises(ValueError, match=message):
        bad(clustered(50))
