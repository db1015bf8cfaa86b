"""CleanCLIP (Bansal et al., 2023): the multimodal contrastive loss plus in-modality contrast between each
image and its second view and each caption and its second view. Finetuning on clean data with it weakens
the spurious trigger-target link a poisoned pretraining planted, because each modality must again be
explained by its own content. Both parts use the local loss over the gathered batch, like `clip`.

At its defaults it is the reference's loss (CleanCLIP's `get_loss` with `inmodal`, `clip_weight` and
`inmodal_weight` 1): the multimodal term in both directions, halved; the in-modality term one direction per
modality (each sample against the second views), the two modalities averaged. `in_modality: symmetric_sum`
is the heavier weighting earlier alignops releases trained with (both directions, modalities summed: about
1.5x the reference's total), kept by name so their runs can be reproduced."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.clip import local_labels
from components.objectives.distributed import gather_with_grad


def contrast(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Cross-entropy of this rank's rows of `a` against every row of the gathered `b` (one direction)."""
    labels = local_labels(a.shape[0], rank, a.device)
    return F.cross_entropy(scale * a @ gather_with_grad(b, world_size).T, labels)


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Symmetric InfoNCE between rows of `a` and `b` (this rank's rows against the gathered batch)."""
    return (contrast(a, b, scale, rank, world_size) + contrast(b, a, scale, rank, world_size)) / 2


@register("cleanclip")
class CleanClipObjective(Objective):
    needs_views = True

    def __init__(self, rank: int = 0, world_size: int = 1, multimodal_weight: float = 1.0,
                 self_weight: float = 1.0, in_modality: Literal["cleanclip", "symmetric_sum"] = "cleanclip"):
        super().__init__(rank, world_size)
        if in_modality not in ("cleanclip", "symmetric_sum"):
            raise ValueError(f"cleanclip's in_modality is 'cleanclip' (the reference's) or 'symmetric_sum', not "
                             f"{in_modality!r}")
        self.multimodal_weight, self.self_weight, self.in_modality = multimodal_weight, self_weight, in_modality

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if outputs.views is None:
            raise ValueError("the cleanclip objective needs second views of the batch (the training module makes "
                             "them for objectives with `needs_views`)")
        scale, rank, world = outputs.logit_scale, self.rank, self.world_size
        multimodal = info_nce(outputs.image_emb, outputs.text_emb, scale, rank, world)
        if self.in_modality == "cleanclip":
            in_modality = (contrast(outputs.image_emb, outputs.views.image_emb, scale, rank, world)
                           + contrast(outputs.text_emb, outputs.views.text_emb, scale, rank, world)) / 2
        else:
            in_modality = (info_nce(outputs.image_emb, outputs.views.image_emb, scale, rank, world)
                           + info_nce(outputs.text_emb, outputs.views.text_emb, scale, rank, world))
        return self.multimodal_weight * multimodal + self.self_weight * in_modality
