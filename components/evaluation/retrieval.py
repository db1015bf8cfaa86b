"""Image-text retrieval recall with several captions per image (the CLIP_benchmark definition).

A query's rank is the number of negatives scored at or above its best positive: a tie never counts in
the model's favour, so a collapsed model (every score equal) ranks every query last. Without ties this is
the CLIP_benchmark rank (candidates strictly above). Recall@k counts a hit when that rank is below k.
Scores are computed a block of queries at a time, so memory is O(block x candidates), never N x N.
"""

from __future__ import annotations

from math import comb

import torch

from components.evaluation.evidence import Interval, check_finite, mean_of, wilson

KS = (1, 5, 10)
RETRIEVAL_METRICS = tuple(f"{d}_r{k}" for d in ("i2t", "t2i") for k in KS) + ("mean_recall",)


def _ranks(queries: torch.Tensor, candidates: torch.Tensor, is_positive, block: int) -> torch.Tensor:
    """Rank of the best positive candidate of each query; `is_positive(rows)` -> (rows x candidates) mask."""
    ranks = []
    for start in range(0, queries.shape[0], block):
        scores = queries[start:start + block] @ candidates.T
        positive = is_positive(torch.arange(start, start + scores.shape[0]))
        best = scores.masked_fill(~positive, float("-inf")).max(dim=1).values
        ranks.append(((scores >= best[:, None]) & ~positive).sum(dim=1))
    return torch.cat(ranks)


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor,
                      block: int = 1024) -> dict[str, float]:
    """Recall@1/5/10 both ways and their mean; `text_to_image[j]` is the image index of caption j."""
    image_emb, text_emb, text_to_image = image_emb.float(), text_emb.float(), text_to_image.long()
    if text_to_image.numel() != text_emb.shape[0] or int(text_to_image.max()) >= image_emb.shape[0]:
        raise ValueError("text_to_image must give an image index for every caption")

    check_finite({"image": image_emb, "text": text_emb})
    image_ids = torch.arange(image_emb.shape[0])
    ranks = {"i2t": _ranks(image_emb, text_emb, lambda rows: text_to_image[None, :] == rows[:, None], block),
             "t2i": _ranks(text_emb, image_emb, lambda rows: image_ids[None, :] == text_to_image[rows, None], block)}
    metrics = {f"{d}_r{k}": (ranks[d] < k).double().mean().item() for d in ranks for k in KS}
    metrics["mean_recall"] = sum(metrics.values()) / len(metrics)
    return metrics


def retrieval_intervals(metrics: dict[str, float], n_images: int, n_texts: int) -> dict[str, Interval]:
    """95% intervals: image queries for i2t, caption queries for t2i, and their mean for mean recall."""
    intervals = {name: wilson(value, n_images if name.startswith("i2t") else n_texts)
                 for name, value in metrics.items() if name != "mean_recall"}
    return intervals | {"mean_recall": mean_of(list(intervals.values()))}


def chance_metrics(text_to_image: torch.Tensor, n_images: int) -> dict[str, float]:
    """Expected recall of a random ranking, to read trained figures against."""
    n_texts = text_to_image.numel()
    per_image = torch.bincount(text_to_image.long(), minlength=n_images).tolist()
    metrics = {}
    for k in KS:
        # image -> text: a hit unless all k drawn texts are negatives (hypergeometric).
        misses = [comb(n_texts - p, k) / comb(n_texts, k) for p in per_image]
        metrics[f"i2t_r{k}"] = 1 - sum(misses) / n_images
        metrics[f"t2i_r{k}"] = min(1.0, k / n_images)
    metrics["mean_recall"] = sum(metrics.values()) / len(metrics)
    return metrics
