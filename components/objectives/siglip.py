"""SigLIP's sigmoid loss with a learnable bias, computed in blocks of (local x local) logits.

The texts of all ranks are gathered (B x D, with gradient), and this rank's images are scored against
one rank's block of texts at a time, so no rank ever holds the global B x B logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.distributed import gather_with_grad


@register("siglip")
class SigLipObjective(Objective):
    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if outputs.logit_bias is None:
            raise ValueError("the siglip objective needs a model with a logit bias (ModelConfig.init_logit_bias)")
        images = outputs.image_emb
        local = images.shape[0]
        total = images.new_zeros(())
        for block_rank, texts in enumerate(gather_with_grad(outputs.text_emb, self.world_size).split(local)):
            logits = outputs.logit_scale * images @ texts.T + outputs.logit_bias
            signs = -torch.ones_like(logits)
            if block_rank == self.rank:
                signs.fill_diagonal_(1.0)
            total = total - F.logsigmoid(signs * logits).sum()
        return total / local
