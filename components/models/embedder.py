"""Inference over a model artifact: texts and images in, L2-normalised embeddings out.

Evaluation and serving both encode through this class, so a served embedding equals the evaluated one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from components.config import ModelConfig
from components.data.transforms import ImageTransform
from components.models.artifact import ModelArtifact


class Embedder:
    def __init__(self, artifact: ModelArtifact, batch_size: int = 256, device: str = "cpu"):
        self.artifact, self.batch_size, self.device = artifact, batch_size, torch.device(device)
        self.transform = self.transform_for(artifact.config)
        self.model = artifact.model.eval().to(self.device)

    @staticmethod
    def transform_for(config: ModelConfig) -> ImageTransform:
        return ImageTransform.for_model(config)

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> Embedder:
        return cls(ModelArtifact.load(directory), device=device)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        chunks = [self.model.encode_text(self.artifact.tokenizer(texts[i:i + self.batch_size]).to(self.device)).cpu()
                  for i in range(0, len(texts), self.batch_size)]
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, self.artifact.config.embed_dim), np.float32)

    def encode_images(self, images: list[Image.Image | Path]) -> np.ndarray:
        chunks = [self.encode_fitted(np.stack([self.transform.fit(im) for im in images[i:i + self.batch_size]]))
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.artifact.config.embed_dim), np.float32)

    @torch.inference_mode()
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed images (N, 3, H, W), as `transform` makes them."""
        pixels = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
        return self.model.encode_image(pixels).cpu().numpy()

    def encode_fitted(self, fitted: np.ndarray) -> np.ndarray:
        """Images as `transform.fit` makes them: uint8 (N, H, W, 3)."""
        return self.encode_pixels(self.transform.normalise(fitted).numpy())

