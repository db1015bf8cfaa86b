"""Symmetric InfoNCE (CLIP) with the local loss: each rank scores its own rows against the gathered batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.distributed import gather_with_grad


def local_labels(local_size: int, rank: int, device: torch.device) -> torch.Tensor:
    """Column of each local row's positive in the gathered batch (ranks hold equal, ordered slices)."""
    return torch.arange(local_size, device=device) + rank * local_size


def clip_loss(images: torch.Tensor, texts: torch.Tensor, all_images: torch.Tensor, all_texts: torch.Tensor, *,
              scale: torch.Tensor, rank: int) -> torch.Tensor:
    """This rank's rows (`images`, `texts`) against every rank's (`all_*`, gathered with gradients)."""
    labels = local_labels(images.shape[0], rank, images.device)
    return (F.cross_entropy(scale * images @ all_texts.T, labels)
            + F.cross_entropy(scale * texts @ all_images.T, labels)) / 2


@register("clip")
class ClipObjective(Objective):
    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        images, texts = outputs.image_emb, outputs.text_emb
        all_images, all_texts = gather_with_grad(images, self.world_size), gather_with_grad(texts, self.world_size)
        return clip_loss(images, texts, all_images, all_texts, scale=outputs.logit_scale, rank=self.rank)
