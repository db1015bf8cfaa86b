"""Mod-X (Ni et al. 2022, `ZixuanNi/Mod-X` `ModX_Training/continue_train_model.py`): continual CLIP training
that keeps the old model's view of the data by distilling its whole similarity matrix, off-diagonal entries
included, with "cognition alignment".

loss = CLIP loss + alpha * (KL_i2t + KL_t2i) / 2, where KL_i2t sums, over every row of the batch's cosine
similarity matrix, KL(old row || new row) of their softmaxes (no temperature, as in the reference). A row the
old model gets wrong (its largest entry is not the diagonal) is replaced by the new model's own row, so that
row contributes nothing: the new model is not pulled towards the old model's mistakes.

The old model is a frozen reference (a registry version resolved at the edge, `--distil-from`); it must see
the same data the same way, so it is re-fed the batch with its own preprocessing.
"""

from __future__ import annotations

import torch

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.clip import clip_loss, local_labels
from components.objectives.distill import similarity_kl
from components.objectives.distributed import gather_with_grad
from components.objectives.frozen import FrozenModel


def cognition_aligned(old: torch.Tensor, new: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`old` with each row whose argmax is not its positive (`labels`) taken from `new` (detached: the
    reference copies the row, and the KL of a row with itself has no gradient)."""
    wrong = old.argmax(dim=1) != labels
    return torch.where(wrong[:, None], new.detach(), old)


def summed_kl(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum over rows of KL(softmax(target) || softmax(logits)), as the reference's `F.kl_div(..., reduction='sum')`."""
    return similarity_kl(target, logits, temperature=1.0) * target.shape[0]


@register("modx")
class ModXObjective(Objective):
    def __init__(self, old: str, model_config: ModelConfig, alpha: float = 20.0, rank: int = 0,
                 world_size: int = 1):
        """`alpha` 20 is the reference's 5-phase setting (its KL is summed over the batch, not averaged)."""
        super().__init__(rank, world_size)
        if not 0 <= alpha < float("inf"):  # NaN fails too
            raise ValueError(f"modx needs a finite alpha >= 0 (the reference uses 20); got {alpha}")
        self.old, self.alpha = FrozenModel(old, model_config), alpha

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        images, texts = outputs.image_emb, outputs.text_emb
        all_images, all_texts = gather_with_grad(images, self.world_size), gather_with_grad(texts, self.world_size)
        old_images, old_texts = (e.to(images.dtype) for e in self.old.embed(batch, self.world_size))
        local = slice(self.rank * images.shape[0], (self.rank + 1) * images.shape[0])
        labels = local_labels(images.shape[0], self.rank, images.device)
        new_i2t, new_t2i = images @ all_texts.T, texts @ all_images.T
        kl = (summed_kl(cognition_aligned(old_images[local] @ old_texts.T, new_i2t, labels), new_i2t)
              + summed_kl(cognition_aligned(old_texts[local] @ old_images.T, new_t2i, labels), new_t2i)) / 2
        # This rank's rows' share of a sum over the global batch: DDP's mean over ranks restores the sum.
        return (clip_loss(images, texts, all_images, all_texts, scale=outputs.logit_scale, rank=self.rank)
                + self.alpha * self.world_size * kl)
