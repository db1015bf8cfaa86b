"""Text-to-image person search by identity: for each text query every gallery image of the same person
is relevant. Recall@k (any relevant image in the top k), mAP, and mINP (the mean of relevant count /
rank of the last relevant image: how deep one must look to find them all). Blockwise, no N x N matrix.

Images that tie in score are ordered irrelevant first: a tie never counts in the model's favour."""

from __future__ import annotations

import torch

from components.evaluation.evidence import Interval, check_finite, mean_interval, wilson

KS = (1, 5, 10)


def _pessimistic_order(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Descending by score; among equal scores the irrelevant images come first (two stable sorts)."""
    by_relevance = relevant.float().argsort(dim=1, stable=True)
    by_score = scores.gather(1, by_relevance).argsort(dim=1, descending=True, stable=True)
    return by_relevance.gather(1, by_score)


def person_search_metrics(text_emb: torch.Tensor, text_persons: torch.Tensor, image_emb: torch.Tensor,
                          image_persons: torch.Tensor, block: int = 1024,
                          ) -> tuple[dict[str, float], dict[str, Interval]]:
    """(metrics, their 95% intervals) over the text queries whose person is in the gallery."""
    check_finite({"text": text_emb, "image": image_emb})
    per_query: dict[str, list[torch.Tensor]] = {f"t2i_r{k}": [] for k in KS} | {"map": [], "minp": []}
    for start in range(0, text_emb.shape[0], block):
        scores = text_emb[start:start + block].float() @ image_emb.float().T
        is_relevant = image_persons[None, :] == text_persons[start:start + block, None]
        order = _pessimistic_order(scores, is_relevant)
        relevant = is_relevant.gather(1, order).float()
        relevant = relevant[relevant.sum(dim=1) > 0]
        positions = torch.arange(1, relevant.shape[1] + 1, dtype=torch.float32)
        hits = relevant.cumsum(dim=1)
        first = relevant.argmax(dim=1)
        for k in KS:
            per_query[f"t2i_r{k}"].append((first < k).double())
        per_query["map"].append(((hits / positions * relevant).sum(dim=1) / relevant.sum(dim=1)).double())
        last = relevant.shape[1] - 1 - relevant.flip(dims=[1]).argmax(dim=1)
        per_query["minp"].append((relevant.sum(dim=1) / (last + 1).float()).double())
    values = {name: torch.cat(parts) for name, parts in per_query.items()}
    queries = len(values["map"])
    if queries == 0:
        raise ValueError("no text query has a gallery image of the same person")
    metrics = {name: v.mean().item() for name, v in values.items()}
    intervals = {name: wilson(metrics[name], queries) if name.startswith("t2i") else mean_interval(v)
                 for name, v in values.items()}
    return metrics, intervals
