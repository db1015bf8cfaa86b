"""Text-to-image person search by identity: for each text query every gallery image of the same person
is relevant. Recall@k (any relevant image in the top k), mAP, and mINP (the mean of relevant count /
rank of the last relevant image: how deep one must look to find them all). Blockwise, no N x N matrix."""

from __future__ import annotations

import torch

KS = (1, 5, 10)


def person_search_metrics(text_emb: torch.Tensor, text_persons: torch.Tensor, image_emb: torch.Tensor,
                          image_persons: torch.Tensor, block: int = 1024) -> dict[str, float]:
    sums = {f"t2i_r{k}": 0.0 for k in KS} | {"map": 0.0, "minp": 0.0}
    queries = 0
    for start in range(0, text_emb.shape[0], block):
        scores = text_emb[start:start + block].float() @ image_emb.float().T
        order = scores.argsort(dim=1, descending=True, stable=True)
        relevant = (image_persons[order] == text_persons[start:start + block, None]).float()
        has_any = relevant.sum(dim=1) > 0
        relevant = relevant[has_any]
        positions = torch.arange(1, relevant.shape[1] + 1, dtype=torch.float32)
        hits = relevant.cumsum(dim=1)
        first = relevant.argmax(dim=1)
        for k in KS:
            sums[f"t2i_r{k}"] += (first < k).float().sum().item()
        sums["map"] += ((hits / positions * relevant).sum(dim=1) / relevant.sum(dim=1)).sum().item()
        last = relevant.shape[1] - 1 - relevant.flip(dims=[1]).argmax(dim=1)
        sums["minp"] += (relevant.sum(dim=1) / (last + 1).float()).sum().item()
        queries += int(has_any.sum())
    if queries == 0:
        raise ValueError("no text query has a gallery image of the same person")
    return {name: total / queries for name, total in sums.items()}
