"""CleanCLIP (Bansal et al., 2023): the multimodal contrastive loss plus in-modality contrast between each
image and its second view and each caption and its second view. Finetuning on clean data with it weakens
the spurious trigger-target link a poisoned pretraining planted, because each modality must again be
explained by its own content. Both parts use the local loss over the gathered batch, like `clip`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.clip import local_labels
from components.objectives.distributed import gather_with_grad


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Symmetric InfoNCE between rows of `a` and `b` (this rank's rows against the gathered batch)."""
    all_a, all_b = gather_with_grad(a, world_size), gather_with_grad(b, world_size)
    labels = local_labels(a.shape[0], rank, a.device)
    return (F.cross_entropy(scale * a @ all_b.T, labels) + F.cross_entropy(scale * b @ all_a.T, labels)) / 2


@register("cleanclip")
class CleanClipObjective(Objective):
    needs_views = True

    def __init__(self, rank: int = 0, world_size: int = 1, multimodal_weight: float = 1.0,
                 self_weight: float = 1.0):
        super().__init__(rank, world_size)
        self.multimodal_weight, self.self_weight = multimodal_weight, self_weight

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if outputs.views is None:
            raise ValueError("the cleanclip objective needs second views of the batch (the training module makes "
                             "them for objectives with `needs_views`)")
        scale, rank, world = outputs.logit_scale, self.rank, self.world_size
        multimodal = info_nce(outputs.image_emb, outputs.text_emb, scale, rank, world)
        images = info_nce(outputs.image_emb, outputs.views.image_emb, scale, rank, world)
        texts = info_nce(outputs.text_emb, outputs.views.text_emb, scale, rank, world)
        return self.multimodal_weight * multimodal + self.self_weight * (images + texts)
