"""A frozen reference model that objectives score against (a distillation teacher, the old model of a
compatible upgrade): loaded from its artifact, never trained, never saved in the student's checkpoints.

It may have other towers, embedding size, image size, normalisation and tokenizer: it sees the same images
(re-normalised and resized for it) and re-tokenizes the same captions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from components.config import ModelConfig
from components.models.artifact import ModelArtifact
from components.objectives.base import Batch
from components.objectives.distributed import gather_constant


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


class FrozenModel:
    """Not an `nn.Module` on purpose: an objective holding it keeps it out of its module tree."""

    def __init__(self, artifact_dir: str | Path, student_config: ModelConfig):
        artifact = ModelArtifact.load(Path(artifact_dir))
        self.model = artifact.model.eval().requires_grad_(False)
        self.tokenizer, self.student_config = artifact.tokenizer, student_config

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @torch.no_grad()
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.exp()

    @torch.no_grad()
    def embed(self, batch: Batch, world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen model's image and text embeddings of the global batch (every rank's rows, in order)."""
        if not batch.captions:
            raise ValueError("an objective with a frozen reference model needs the captions in the batch")
        model = self.model.to(batch.pixels.device)
        pixels = renormalise(batch.pixels, self.student_config, model.config).to(batch.pixels.dtype)
        images = model.encode_image(pixels)
        texts = model.encode_text(self.tokenizer(batch.captions).to(pixels.device))
        return gather_constant(images, world_size), gather_constant(texts, world_size)
