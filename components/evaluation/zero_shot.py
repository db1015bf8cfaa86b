"""Zero-shot classification: a class embedding is the mean of its prompts' embeddings; an image is
assigned the most similar class. Reported as top-1 / top-5 accuracy and mean per-class recall.

The true class's rank counts every other class scored at or above it: a tie never counts as a hit, so a
collapsed model is right no more often than chance allows."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.evaluation.evidence import Interval, check_finite, mean_of, wilson
from components.models.embedder import Embedder
from components.text.prompts import prompts


def class_embeddings(embedder: Embedder, classes: list[str], domain: str = "general") -> torch.Tensor:
    per_class = prompts(classes, domain=domain)
    flat = torch.from_numpy(embedder.encode_texts([p for group in per_class for p in group]))
    return F.normalize(flat.reshape(len(classes), -1, flat.shape[-1]).mean(dim=1), dim=-1)


def zero_shot_metrics(image_emb: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor,
                      ) -> tuple[dict[str, float], dict[str, Interval]]:
    """(metrics, their 95% intervals); `labels[i]`: the class index of image i (one positive per image)."""
    check_finite({"image": image_emb, "class": class_emb})
    scores = image_emb.float() @ class_emb.float().T
    true = scores.gather(1, labels[:, None].long())
    rank = (scores >= true).sum(dim=1) - 1  # other classes at or above the true one
    n = len(labels)
    metrics = {"zs_top1": (rank < 1).double().mean().item()}
    intervals = {"zs_top1": wilson(metrics["zs_top1"], n)}
    if class_emb.shape[0] >= 5:
        metrics["zs_top5"] = (rank < 5).double().mean().item()
        intervals["zs_top5"] = wilson(metrics["zs_top5"], n)
    per_class = [(rank[labels == c] < 1).double() for c in labels.unique()]
    metrics["zs_mean_per_class_recall"] = sum(r.mean().item() for r in per_class) / len(per_class)
    intervals["zs_mean_per_class_recall"] = mean_of([wilson(r.mean().item(), len(r)) for r in per_class])
    return metrics, intervals
