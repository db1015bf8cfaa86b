"""Zero-shot classification: a class embedding is the mean of its prompts' embeddings; an image is
assigned the most similar class. Reported as top-1 / top-5 accuracy and mean per-class recall."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.models.embedder import Embedder
from components.text.prompts import prompts


def class_embeddings(embedder: Embedder, classes: list[str], domain: str = "general") -> torch.Tensor:
    per_class = prompts(classes, domain=domain)
    flat = torch.from_numpy(embedder.encode_texts([p for group in per_class for p in group]))
    return F.normalize(flat.reshape(len(classes), -1, flat.shape[-1]).mean(dim=1), dim=-1)


def zero_shot_metrics(image_emb: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor) -> dict[str, float]:
    """`labels[i]`: the class index of image i (one positive per image)."""
    scores = image_emb.float() @ class_emb.float().T
    ranked = scores.argsort(dim=1, descending=True)
    hit_at = (ranked == labels[:, None]).float().argmax(dim=1)  # position of the true class
    metrics = {"zs_top1": (hit_at < 1).float().mean().item()}
    if class_emb.shape[0] >= 5:
        metrics["zs_top5"] = (hit_at < 5).float().mean().item()
    present = labels.unique()
    recalls = [(hit_at[labels == c] < 1).float().mean().item() for c in present]
    metrics["zs_mean_per_class_recall"] = sum(recalls) / len(recalls)
    return metrics
