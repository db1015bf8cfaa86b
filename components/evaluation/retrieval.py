"""Image-text retrieval recall with several captions per image (the CLIP_benchmark definition).

A query's rank is the number of candidates scored strictly above its best positive; Recall@k counts a
hit when that rank is below k. Scores are computed a block of queries at a time, so memory is
O(block x candidates), never the full N x N matrix.
"""

from __future__ import annotations

from math import comb

import torch

KS = (1, 5, 10)
RETRIEVAL_METRICS = tuple(f"{d}_r{k}" for d in ("i2t", "t2i") for k in KS) + ("mean_recall",)


def _ranks(queries: torch.Tensor, candidates: torch.Tensor, positive: torch.Tensor, block: int) -> torch.Tensor:
    """Rank of the best positive candidate of each query; `positive(rows, scores)` -> best positive score."""
    ranks = []
    for start in range(0, queries.shape[0], block):
        scores = queries[start:start + block] @ candidates.T
        best = positive(torch.arange(start, start + scores.shape[0]), scores)
        ranks.append((scores > best[:, None]).sum(dim=1))
    return torch.cat(ranks)


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor,
                      block: int = 1024) -> dict[str, float]:
    """Recall@1/5/10 both ways and their mean; `text_to_image[j]` is the image index of caption j."""
    image_emb, text_emb, text_to_image = image_emb.float(), text_emb.float(), text_to_image.long()
    if text_to_image.numel() != text_emb.shape[0] or int(text_to_image.max()) >= image_emb.shape[0]:
        raise ValueError("text_to_image must give an image index for every caption")

    def best_caption(rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        is_positive = text_to_image[None, :] == rows[:, None]
        return scores.masked_fill(~is_positive, float("-inf")).max(dim=1).values

    def own_image(rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores[torch.arange(len(rows)), text_to_image[rows]]

    ranks = {"i2t": _ranks(image_emb, text_emb, best_caption, block),
             "t2i": _ranks(text_emb, image_emb, own_image, block)}
    metrics = {f"{d}_r{k}": (ranks[d] < k).double().mean().item() for d in ranks for k in KS}
    metrics["mean_recall"] = sum(metrics.values()) / len(metrics)
    return metrics


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


def prefixed(metrics: dict[str, float], eval_set: str) -> dict[str, float]:
    return {f"{eval_set}/{name}": value for name, value in metrics.items()}
