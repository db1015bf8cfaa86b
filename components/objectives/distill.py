"""Distillation from a teacher artifact: the student's in-batch similarity distributions (image->text and
text->image) are pulled towards the frozen teacher's by KL divergence at a temperature."""

from __future__ import annotations

import torch

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.distributed import gather_with_grad
from components.objectives.frozen import FrozenModel


def similarity_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the row softmaxes, averaged over rows, scaled by T^2 (Hinton et al.)."""
    teacher = (teacher_logits / temperature).log_softmax(dim=1)
    student = (student_logits / temperature).log_softmax(dim=1)
    return (teacher.exp() * (teacher - student)).sum(dim=1).mean() * temperature ** 2


@register("distill")
class DistillObjective(Objective):
    def __init__(self, teacher: str, model_config: ModelConfig, temperature: float = 1.0, rank: int = 0,
                 world_size: int = 1):
        super().__init__(rank, world_size)
        self.teacher, self.temperature = FrozenModel(teacher, model_config), temperature

    def teacher_logits(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        images, texts = self.teacher.embed(batch, self.world_size)
        local = slice(self.rank * batch.pixels.shape[0], (self.rank + 1) * batch.pixels.shape[0])
        scale = self.teacher.logit_scale()
        return scale * images[local] @ texts.T, scale * texts[local] @ images.T

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        teacher_i2t, teacher_t2i = self.teacher_logits(batch)
        images, texts, scale = outputs.image_emb, outputs.text_emb, outputs.logit_scale
        all_images, all_texts = gather_with_grad(images, self.world_size), gather_with_grad(texts, self.world_size)
        return (similarity_kl(teacher_i2t, scale * images @ all_texts.T, self.temperature)
                + similarity_kl(teacher_t2i, scale * texts @ all_images.T, self.temperature)) / 2
