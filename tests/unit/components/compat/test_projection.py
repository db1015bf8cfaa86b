"""The projection into an old embedding space: its losses against per-pair references, the text-only stage
learning a map without a single image, and a stored projection loading to the same map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from components.compat.projection import (
    Projection,
    fit_projection,
    pair_alignment_loss,
    space_file,
    text_alignment_loss,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def spaces(n: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The same items in a new space and an old one: an unknown rotation apart, with a little noise."""
    rng = np.random.default_rng(seed)
    new = unit(rng.normal(size=(n, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return new, unit(new @ rotation + 0.05 * rng.normal(size=(n, dim)))


def reference_infonce(queries, keys, scale):
    total = 0.0
    for i in range(len(queries)):
        logits = [scale * float(queries[i] @ keys[j]) for j in range(len(keys))]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(queries)


def reference_misalignment(projected, old):
    return sum(1 - float(p @ o) for p, o in zip(projected, old, strict=True)) / len(old)


def test_the_losses_match_per_pair_references():
    torch.manual_seed(0)
    a, b, c, d = (F.normalize(torch.randn(5, 8, dtype=torch.float64), dim=-1) for _ in range(4))
    assert text_alignment_loss(a, b, 7.0).item() == pytest.approx(
        (reference_infonce(a, b, 7.0) + reference_infonce(b, a, 7.0)) / 2 + reference_misalignment(a, b), abs=1e-10)
    assert pair_alignment_loss(a, b, c, d, 7.0).item() == pytest.approx(
        (reference_infonce(b, c, 7.0) + reference_infonce(a, d, 7.0)) / 2 + reference_misalignment(a, c)
        + reference_misalignment(b, d), abs=1e-10)


def test_the_text_stage_learns_the_map_from_captions_alone():
    new, old = spaces(600)
    projection, losses = fit_projection(new[:500], old[:500], steps=200, batch_size=128)
    assert set(losses) == {"text"}  # no pairs, no images
    held_out = projection.apply(new[500:]) @ old[500:].T  # captions it never saw
    assert (held_out.argmax(axis=1) == np.arange(100)).mean() >= 0.95
    unmapped = new[500:] @ old[500:].T
    assert (unmapped.argmax(axis=1) == np.arange(100)).mean() <= 0.1  # without the map: about chance


def test_the_pair_stage_follows_and_an_mlp_fits_too():
    new, old = spaces(400, seed=1)
    images_new, images_old = spaces(400, seed=1)  # images in the same two spaces
    projection, losses = fit_projection(new, old, pairs=(images_new, new, images_old, old), hidden=32, steps=100)
    assert set(losses) == {"text", "pairs"} and all(np.isfinite(list(losses.values())))
    assert projection.hidden == 32 and projection.apply(new).shape == (400, 16)


def test_a_stored_projection_loads_to_the_same_map(tmp_path):
    new, old = spaces(100)
    projection, _ = fit_projection(new, old, hidden=8, steps=5)
    path = projection.save(tmp_path, "general:3")
    assert path == tmp_path / "compat" / "general-v3.safetensors"
    np.testing.assert_array_equal(Projection.load(tmp_path, "general:3").apply(new), projection.apply(new))


@pytest.mark.parametrize("space", ["../x:1", "general", "general:v3", "a/b:2", ""])
def test_a_space_is_named_by_a_model_version(space):
    with pytest.raises(ValueError, match="name:version"):
        space_file(space)


def test_a_missing_projection_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="re-embed the gallery"):
        Projection.load(tmp_path, "general:1")
