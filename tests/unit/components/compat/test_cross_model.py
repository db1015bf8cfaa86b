"""Cross-model retrieval: a model against itself scores its own figures, a rotated space without a map scores
about chance, the fitted projection brings it back, and rows that differ are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.compat.cross_model import cross_model_metrics, one_caption_per_image
from components.compat.projection import fit_projection
from components.evaluation.embed import EncodedSplit
from components.evaluation.retrieval import retrieval_metrics


def split(images: np.ndarray, texts: np.ndarray, per_image: int) -> EncodedSplit:
    n = len(images)
    captions = n * per_image
    return EncodedSplit(torch.from_numpy(images), torch.from_numpy(texts), torch.arange(n).repeat_interleave(per_image),
                        [f"{i}.jpg" for i in range(n)], [str(i) for i in range(n)],
                        [f"caption {j}" for j in range(captions)], [None] * n, [None] * n, [None] * captions)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def two_models(n: int = 200, per_image: int = 2, dim: int = 16, seed: int = 0) -> tuple[EncodedSplit, EncodedSplit]:
    """An old model and a new one whose space is the old one rotated, both decent on their own."""
    rng = np.random.default_rng(seed)
    images = unit(rng.normal(size=(n, dim)))
    texts = unit(np.repeat(images, per_image, axis=0) + 0.3 * rng.normal(size=(n * per_image, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return split(unit(images @ rotation), unit(texts @ rotation), per_image), split(images, texts, per_image)


def test_a_model_against_its_own_gallery_scores_its_own_figures():
    _, old = two_models()
    assert cross_model_metrics(old, old) == pytest.approx(retrieval_metrics(old.image_emb, old.text_emb,
                                                                            old.text_to_image))


def test_a_rotated_space_is_about_chance_until_the_projection_maps_it_back():
    new, old = two_models()
    own = retrieval_metrics(old.image_emb, old.text_emb, old.text_to_image)
    without = cross_model_metrics(new, old)
    assert without["t2i_r1"] <= 0.05 and without["i2t_r1"] <= 0.05  # chance is 1/200
    projection, _ = fit_projection(new.text_emb.numpy(), old.text_emb.numpy(),
                                   pairs=one_caption_per_image(new, old), steps=200, batch_size=128)
    mapped = cross_model_metrics(new, old, projection)
    assert mapped["t2i_r1"] >= own["t2i_r1"] - 0.03 and mapped["i2t_r1"] >= own["i2t_r1"] - 0.03


def test_one_caption_per_image_pairs_each_image_with_one_of_its_own_captions():
    new, old = two_models(n=50, per_image=3)
    new_images, new_texts, old_images, old_texts = one_caption_per_image(new, old, seed=4)
    assert len(new_images) == len(new_texts) == len(old_images) == len(old_texts) == 50
    for image in range(50):
        caption = int(np.flatnonzero((new.text_emb.numpy() == new_texts[image]).all(axis=1))[0])
        assert int(new.text_to_image[caption]) == image
        np.testing.assert_array_equal(old_texts[image], old.text_emb[caption].numpy())


def test_different_rows_or_sizes_are_refused():
    new, old = two_models()
    other = split(old.image_emb.numpy()[:100], old.text_emb.numpy()[:200], 2)
    with pytest.raises(ValueError, match="same rows"):
        cross_model_metrics(new, other)
    wider = split(np.pad(new.image_emb.numpy(), ((0, 0), (0, 4))), np.pad(new.text_emb.numpy(), ((0, 0), (0, 4))), 2)
    with pytest.raises(ValueError, match="without a projection"):
        cross_model_metrics(wider, old)
