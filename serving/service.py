"""The BentoML embedding service over one model artifact.

Which model it serves is a bento argument (`model_tag`), fixed at `bentoml build` and restored by
`bentoml serve`, so one service definition packages any registry version.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from bentoml.models import BentoModel
from PIL import Image
from pydantic import BaseModel

from components.models.embedder import Embedder


class ServiceArgs(BaseModel):
    model_tag: str = "alignops-model:latest"


ARGS = bentoml.use_arguments(ServiceArgs)


class RankResult(BaseModel):
    similarity: list[list[float]]  # texts x images, cosine
    probabilities: list[list[float]]  # per text, softmax over images with the model's logit scale


def _require(items: list, what: str) -> None:
    if not items:
        raise InvalidArgument(f"{what} must be a non-empty list")


@bentoml.service(name="alignops-embedding", traffic={"timeout": 60}, workers=1)
class EmbeddingService:
    bento_model = BentoModel(ARGS.model_tag)

    def __init__(self) -> None:
        self.embedder = Embedder.load(Path(self.bento_model.path))

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=50)
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings, one row per text."""
        return self.embedder.encode_texts(texts)

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=50)
    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings, one row per image."""
        return self.embedder.encode_images(images)

    @bentoml.api
    def rank(self, texts: list[str], images: list[Image.Image]) -> RankResult:
        """Score every text against every image."""
        _require(texts, "texts")
        _require(images, "images")
        similarity = self.embedder.encode_texts(texts) @ self.embedder.encode_images(images).T
        logits = self.embedder.logit_scale * similarity
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return RankResult(similarity=similarity.tolist(), probabilities=probabilities.tolist())
