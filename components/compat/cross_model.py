"""Cross-model retrieval: the new model's queries against the gallery the old model embedded, on one eval
split, beside each model's own figures on the same split. `xm/<set>/t2i_r1` is new-model captions searching
old-model images; `xm/<set>/i2t_r1` new-model images searching old-model captions. The old model's own
figures are measured in the same run (same split, same rows), so the gate compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from components.compat.projection import Projection
from components.evaluation.embed import EncodedSplit
from components.evaluation.metric_names import CROSS_MODEL, prefixed
from components.evaluation.retrieval import RETRIEVAL_METRICS, retrieval_metrics
from components.evaluation.suites import EvalTarget
from components.models.embedder import Embedder


def cross_model_metrics(new: EncodedSplit, old: EncodedSplit, projection: Projection | None = None) -> dict[str, float]:
    """Recall of new-model queries (through `projection`, when the spaces differ) against old-model galleries."""
    if new.image_ids != old.image_ids or new.captions != old.captions:
        raise ValueError("cross-model retrieval needs both models' embeddings of the same rows of the same split")
    new_images, new_texts = new.image_emb, new.text_emb
    if projection is not None:
        with torch.inference_mode():
            new_images, new_texts = projection(new_images.float()), projection(new_texts.float())
    if new_texts.shape[1] != old.image_emb.shape[1]:
        raise ValueError(f"the new space has {new_texts.shape[1]} dimensions and the old {old.image_emb.shape[1]}: "
                         "they cannot be compared without a projection")
    text_queries = retrieval_metrics(old.image_emb, new_texts, new.text_to_image)
    image_queries = retrieval_metrics(new_images, old.text_emb, new.text_to_image)
    metrics = {m: (text_queries if m.startswith("t2i") else image_queries)[m] for m in RETRIEVAL_METRICS[:-1]}
    return metrics | {"mean_recall": sum(metrics.values()) / len(metrics)}


@dataclass
class Compatibility:
    """One eval set measured three ways: new/new, old/old and new->old (named `xm/<set>/…`)."""

    new: dict[str, float]
    old: dict[str, float]
    cross: dict[str, float]


def against_old(eval_set: str, new: EncodedSplit, old: EncodedSplit,
                projection: Projection | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(the new model's queries against the old gallery, the old model's own figures) on one eval set: what a
    run that has already measured the new model adds to its figures."""
    old_own = prefixed(retrieval_metrics(old.image_emb, old.text_emb, old.text_to_image), eval_set)
    cross = prefixed(cross_model_metrics(new, old, projection), f"{CROSS_MODEL}/{eval_set}")
    return cross, old_own


def measure_compatibility(new: Embedder, old: Embedder, target: EvalTarget,
                          projection: Projection | None = None) -> Compatibility:
    """Both models' own figures on `target`'s split, and the new model's queries against the old gallery."""
    new_split = target.encode(new)
    cross, old_own = against_old(target.name, new_split, target.encode(old), projection)
    new_own = prefixed(retrieval_metrics(new_split.image_emb, new_split.text_emb, new_split.text_to_image),
                       target.name)
    return Compatibility(new_own, old_own, cross)


def one_caption_per_image(new: EncodedSplit, old: EncodedSplit, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(new images, new texts, old images, old texts), one row per image with one of its captions drawn at
    random, so that no batch of pairs holds two captions of one image as each other's negatives."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(new.captions))
    _, first = np.unique(new.text_to_image.numpy()[shuffled], return_index=True)  # sorted by image index
    captions = shuffled[first]
    return (new.image_emb.numpy(), new.text_emb[captions].numpy(), old.image_emb.numpy(),
            old.text_emb[captions].numpy())
