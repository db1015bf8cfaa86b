"""Backward-compatible training (BCT, Shen et al. 2020; cross-modal as in XBT): the new model's embeddings stay
retrievable against the frozen old model's, so a gallery the old model embedded can be queried by the new one
without re-embedding it.

The influence loss, cross-modal: InfoNCE of the new model's texts against the old model's images and of the
new model's images against the old model's texts, at the old space's temperature. Used beside `clip` (which
keeps the new model's own space good); both spaces must have the same size (else fit a `projection`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.clip import local_labels
from components.objectives.frozen import FrozenModel


@register("bct")
class BackwardCompatibleObjective(Objective):
    def __init__(self, old: str, model_config: ModelConfig, rank: int = 0, world_size: int = 1):
        super().__init__(rank, world_size)
        self.old = FrozenModel(old, model_config)
        if self.old.config.embed_dim != model_config.embed_dim:
            raise ValueError(f"bct needs the old and new embedding sizes to match (old {self.old.config.embed_dim}, "
                             f"new {model_config.embed_dim}); to bridge different sizes, fit a projection instead")

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        old_images, old_texts = self.old.embed(batch, self.world_size)
        labels = local_labels(outputs.image_emb.shape[0], self.rank, outputs.image_emb.device)
        scale = self.old.logit_scale().to(outputs.image_emb.dtype)
        return (F.cross_entropy(scale * outputs.text_emb @ old_images.to(outputs.text_emb.dtype).T, labels)
                + F.cross_entropy(scale * outputs.image_emb @ old_texts.to(outputs.image_emb.dtype).T, labels)) / 2
