"""Distillation from a teacher artifact: the student's in-batch similarity distributions (image->text and
text->image) are pulled towards the frozen teacher's by KL divergence at a temperature.

The teacher may have other towers, embedding size, image size, normalisation and tokenizer: it sees the
same images (re-normalised and resized for it) and re-tokenizes the same captions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from components.config import ModelConfig
from components.models.artifact import ModelArtifact
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.distributed import gather_constant, gather_with_grad


def similarity_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the row softmaxes, averaged over rows, scaled by T^2 (Hinton et al.)."""
    teacher = (teacher_logits / temperature).log_softmax(dim=1)
    student = (student_logits / temperature).log_softmax(dim=1)
    return (teacher.exp() * (teacher - student)).sum(dim=1).mean() * temperature ** 2


def renormalise(pixels: torch.Tensor, source: ModelConfig, target: ModelConfig) -> torch.Tensor:
    """Pixels preprocessed for `source`, as `target`'s preprocessing would have made them."""
    if (source.image_mean, source.image_std, source.vision.image_size) == (
            target.image_mean, target.image_std, target.vision.image_size):
        return pixels

    def column(values):
        return torch.tensor(values, dtype=pixels.dtype, device=pixels.device)[:, None, None]

    raw = pixels * column(source.image_std) + column(source.image_mean)
    size = target.vision.image_size
    resized = F.interpolate(raw, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return (resized - column(target.image_mean)) / column(target.image_std)


@register("distill")
class DistillObjective(Objective):
    def __init__(self, teacher: str, model_config: ModelConfig, temperature: float = 1.0, rank: int = 0,
                 world_size: int = 1):
        super().__init__(rank, world_size)
        artifact = ModelArtifact.load(Path(teacher))
        # Kept out of the module tree: the teacher is neither trained nor saved in the student's checkpoints.
        self.__dict__["teacher"] = artifact.model.eval().requires_grad_(False)
        self.teacher_tokenizer, self.student_config = artifact.tokenizer, model_config
        self.temperature = temperature

    @torch.no_grad()
    def teacher_logits(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        teacher = self.__dict__["teacher"].to(batch.pixels.device)
        pixels = renormalise(batch.pixels, self.student_config, teacher.config).to(batch.pixels.dtype)
        images = gather_constant(teacher.encode_image(pixels), self.world_size)
        texts = gather_constant(teacher.encode_text(self.teacher_tokenizer(batch.captions).to(pixels.device)),
                                self.world_size)
        local = slice(self.rank * batch.pixels.shape[0], (self.rank + 1) * batch.pixels.shape[0])
        scale = teacher.logit_scale.exp()
        return scale * images[local] @ texts.T, scale * texts[local] @ images.T

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if not batch.captions:
            raise ValueError("the distill objective needs the captions in the batch")
        teacher_i2t, teacher_t2i = self.teacher_logits(batch)
        images, texts, scale = outputs.image_emb, outputs.text_emb, outputs.logit_scale
        all_images, all_texts = gather_with_grad(images, self.world_size), gather_with_grad(texts, self.world_size)
        return (similarity_kl(teacher_i2t, scale * images @ all_texts.T, self.temperature)
                + similarity_kl(teacher_t2i, scale * texts @ all_images.T, self.temperature)) / 2
