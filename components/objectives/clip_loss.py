"""Symmetric InfoNCE (CLIP) loss, a plain module with rank and world size injected.

With several ranks, each rank scores its local embeddings against the gathered global batch ("local
loss"). The gather must carry gradients back to the rank that produced each embedding: a plain
`dist.all_gather` returns constants and silently halves the encoder gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    import torch.distributed.nn.functional as dist_nn

    return torch.cat(dist_nn.all_gather(x), dim=0)


class ClipLoss(nn.Module):
    def __init__(self, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.rank, self.world_size = rank, world_size

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            all_images, all_texts = gather_with_grad(image_emb), gather_with_grad(text_emb)
        else:
            all_images, all_texts = image_emb, text_emb
        logits_per_image = logit_scale * image_emb @ all_texts.T
        logits_per_text = logit_scale * text_emb @ all_images.T
        labels = torch.arange(image_emb.shape[0], device=image_emb.device) + self.rank * image_emb.shape[0]
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
