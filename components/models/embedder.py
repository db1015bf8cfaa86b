"""Inference over a model artifact: texts and images in, L2-normalised embeddings out.

Evaluation and serving both encode through this class, so a served embedding equals the evaluated one. The
towers run in PyTorch (`TorchEncoders`), or through onnxruntime where a bento was packaged with the ONNX
runtime (`components.interop.onnx.OnnxEncoders`); tokenizing, preprocessing and batching are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from components.config import ModelConfig
from components.data.transforms import ImageTransform
from components.models.artifact import ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.text.tokenizer import CaptionTokenizer


class Encoders(Protocol):
    """The towers: token ids (N, context) and normalised pixels (N, 3, H, W) to normalised embeddings."""

    def encode_text(self, token_ids: torch.Tensor) -> np.ndarray: ...

    def encode_image(self, pixels: np.ndarray) -> np.ndarray: ...


class TorchEncoders:
    def __init__(self, model: DualEncoder, device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def encode_text(self, token_ids: torch.Tensor) -> np.ndarray:
        return self.model.encode_text(token_ids.to(self.device)).cpu().numpy()

    @torch.inference_mode()
    def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
        return self.model.encode_image(pixels).cpu().numpy()


class Embedder:
    def __init__(self, artifact: ModelArtifact, batch_size: int = 256, device: str = "cpu"):
        self.config, self.tokenizer, self.batch_size = artifact.config, artifact.tokenizer, batch_size
        self.logit_scale = float(artifact.model.logit_scale.detach().exp())
        self.transform = self.transform_for(artifact.config)
        self.encoders: Encoders = TorchEncoders(artifact.model, device)

    @classmethod
    def with_encoders(cls, config: ModelConfig, tokenizer: CaptionTokenizer, logit_scale: float,
                      encoders: Encoders, batch_size: int = 256) -> Embedder:
        """An embedder whose towers run elsewhere (onnxruntime), with the artifact's tokenizer and transform."""
        embedder = cls.__new__(cls)
        embedder.config, embedder.tokenizer, embedder.batch_size = config, tokenizer, batch_size
        embedder.logit_scale, embedder.encoders = logit_scale, encoders
        embedder.transform = cls.transform_for(config)
        return embedder

    @staticmethod
    def transform_for(config: ModelConfig) -> ImageTransform:
        return ImageTransform.for_model(config)

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> Embedder:
        return cls(ModelArtifact.load(directory), device=device)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        chunks = [self.encoders.encode_text(self.tokenizer(texts[i:i + self.batch_size]))
                  for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.config.embed_dim), np.float32)

    def encode_images(self, images: list[Image.Image | Path]) -> np.ndarray:
        chunks = [self.encode_fitted(np.stack([self.transform.fit(im) for im in images[i:i + self.batch_size]]))
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.config.embed_dim), np.float32)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed images (N, 3, H, W), as `transform` makes them."""
        return self.encoders.encode_image(pixels)

    def encode_fitted(self, fitted: np.ndarray) -> np.ndarray:
        """Images as `transform.fit` makes them: uint8 (N, H, W, 3)."""
        return self.encode_pixels(self.transform.normalise(fitted).numpy())
