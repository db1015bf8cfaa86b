"""Identity-aware contrast for person search: every pair showing the same `person_id` is a positive.

Each row's target is uniform over its positives, and the loss is the cross-entropy between that target
and the softmax over the gathered batch, both ways (as in ID-aware matching for text-based person search).
"""

from __future__ import annotations

import torch

from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.distributed import gather_constant, gather_with_grad


def soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    targets = positives / positives.sum(dim=1, keepdim=True)
    return -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()


@register("identity")
class IdentityObjective(Objective):
    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if batch.person_ids is None:
            raise ValueError("the identity objective needs a `person_id` column in the dataset manifest")
        images, texts, scale = outputs.image_emb, outputs.text_emb, outputs.logit_scale
        all_images, all_texts = gather_with_grad(images, self.world_size), gather_with_grad(texts, self.world_size)
        positives = (batch.person_ids[:, None] == gather_constant(batch.person_ids, self.world_size)[None, :]).float()
        return (soft_cross_entropy(scale * images @ all_texts.T, positives)
                + soft_cross_entropy(scale * texts @ all_images.T, positives)) / 2
