"""The BentoML embedding service: a front service and an internal encoder service.

`EmbeddingService` (public) checks and decodes every request on its own (bad input gets a 4xx naming
the item) and runs rank / classify / search. It hands clean texts and pixels to `Encoder`, the model,
through a `Batcher` that merges concurrent requests into one encoder call (adaptive batching, see
serving/batching.py). A bad request therefore never fails a batch it shares with others. Which model
is served, and the batching and input limits, are bento arguments fixed at `bentoml build`
(serving/options.py).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
from pathlib import Path

import aiohttp
import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument
from bentoml.models import BentoModel
from PIL import Image
from pydantic import BaseModel, Field

from components.compat.projection import Projection
from components.evaluation.gallery import GALLERY_DIR, QUERY_SPACE_FILE, Gallery
from components.models.artifact import WEIGHTS_FILE, ModelArtifact
from components.models.embedder import Embedder
from components.text.prompts import TEMPLATES, prompts
from serving import hardening
from serving.auth import Authenticate
from serving.batching import Batcher
from serving.inputs import check_templates, check_texts, decode_images
from serving.options import ServiceArgs
from serving.provenance import verify_served_model

hardening.apply()


ARGS = bentoml.use_arguments(ServiceArgs)
ENCODER_ATTEMPTS = 3
BATCH_SIZES = bentoml.metrics.Histogram(name="alignops_encoder_batch_items", documentation="items per encoder call",
                                        labelnames=["endpoint"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


@bentoml.service(name="alignops-encoder", workers=1, threads=1, traffic={"timeout": 60})
class Encoder:
    """Internal: the model, one call at a time (concurrent forwards would compete for the same cores).
    Its inputs are already checked."""

    bento_model = BentoModel(ARGS.model_tag)

    def __init__(self) -> None:
        verify_served_model(Path(self.bento_model.path))  # the weights it loads are the version's, signed
        self.embedder = _embedder(Path(self.bento_model.path))
        _freeze_startup_objects()

    @bentoml.api
    def texts(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_texts(texts)

    @bentoml.api
    def pixels(self, fitted: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3): normalised here, once per batch, so the hop carries a quarter of the bytes."""
        return self.embedder.encode_fitted(fitted)


class TextEmbeddings(BaseModel):
    embeddings: list[list[float]]
    truncated: list[int] = Field(description="indices of texts cut to the model's context length")


class ImageEmbeddings(BaseModel):
    embeddings: list[list[float]]


class Ranking(BaseModel):
    similarity: list[list[float]] = Field(description="texts x images, cosine")
    probabilities: list[list[float]] = Field(description="per text, softmax over images with the logit scale")
    truncated: list[int]


class Classification(BaseModel):
    labels: list[str]
    probabilities: list[list[float]] = Field(description="per image, softmax over labels")
    predictions: list[str]


class Hit(BaseModel):
    rank: int
    score: float
    item: dict


class SearchResult(BaseModel):
    hits: list[list[Hit]] = Field(description="per query, the k best gallery items")
    gallery_size: int
    indexed: bool


@bentoml.service(name="alignops-embedding", workers=ARGS.front_workers or "cpu_count",
                  traffic={"timeout": 60, "concurrency": 64})
class EmbeddingService:
    """Embeddings, ranking, zero-shot classification and gallery search over one registry version."""

    encoder = bentoml.depends(Encoder)
    bento_model = BentoModel(ARGS.model_tag)

    def __init__(self) -> None:
        path = Path(self.bento_model.path)
        # The tokenizer and config it loads are the version's, signed; the weights are the encoder's to check (one
        # front process per core would otherwise each hash them at start).
        verify_served_model(path, skip=frozenset({WEIGHTS_FILE}))
        artifact = ModelArtifact.load_light(path)
        self.tokenizer, self.transform = artifact.tokenizer, Embedder.transform_for(artifact.config)
        self.logit_scale = artifact.logit_scale
        self.gallery = Gallery.load(path / GALLERY_DIR) if (path / GALLERY_DIR).exists() else None
        self.query_map = _query_projection(path)
        self.limits = ARGS.limits
        self.batchers = {endpoint: Batcher(functools.partial(self._call_encoder, endpoint), ARGS.max_batch_size,
                                           ARGS.max_latency_ms, BATCH_SIZES.labels(endpoint=endpoint).observe)
                         for endpoint in ("texts", "pixels")}
        _freeze_startup_objects()

    async def _encode(self, endpoint: str, payload: list[str] | np.ndarray) -> np.ndarray:
        if ARGS.batching:
            return await self.batchers[endpoint](payload)
        return await self._call_encoder(endpoint, payload)

    async def _call_encoder(self, endpoint: str, payload: list[str] | np.ndarray) -> np.ndarray:
        """Call the encoder, again when its keep-alive connection was dropped under load (a known
        BentoML issue, bentoml/BentoML#3669) or a call hangs past `encoder_timeout_s`; safe, because
        encoding has no side effects."""
        call = getattr(self.encoder.to_async, endpoint)
        for _ in range(ENCODER_ATTEMPTS - 1):
            try:
                return np.asarray(await asyncio.wait_for(call(payload), ARGS.encoder_timeout_s))
            except (aiohttp.ClientConnectionError, TimeoutError):
                continue
        return np.asarray(await call(payload))

    async def _texts(self, texts: object, what: str = "texts") -> tuple[np.ndarray, list[int]]:
        texts = check_texts(texts, self.limits, what)
        truncated = [i for i, cut in enumerate(self.tokenizer.truncated(texts)) if cut]
        return await self._encode("texts", texts), truncated

    async def _images(self, images: object) -> np.ndarray:
        decoded = decode_images(images, self.limits, self.transform)
        fitted = np.stack([self.transform.fit_decoded(image) for image in decoded])
        return await self._encode("pixels", fitted)

    @bentoml.api
    async def encode_text(self, texts: list[str]) -> TextEmbeddings:
        """L2-normalised text embeddings; texts longer than the context are truncated (and listed)."""
        embeddings, truncated = await self._texts(texts)
        return TextEmbeddings(embeddings=embeddings.tolist(), truncated=truncated)

    @bentoml.api
    async def encode_image(self, images: list[Image.Image]) -> ImageEmbeddings:
        """L2-normalised image embeddings; images as files (multipart) or base64 strings (JSON)."""
        return ImageEmbeddings(embeddings=(await self._images(images)).tolist())

    @bentoml.api
    async def rank(self, texts: list[str], images: list[Image.Image]) -> Ranking:
        """Score every text against every image."""
        text_emb, truncated = await self._texts(texts)
        similarity = text_emb @ (await self._images(images)).T
        return Ranking(similarity=similarity.tolist(), probabilities=_softmax(self.logit_scale * similarity).tolist(),
                       truncated=truncated)

    @bentoml.api
    async def classify(self, images: list[Image.Image], labels: list[str], templates: list[str] | None = None,
                       domain: str = "general") -> Classification:
        """Zero-shot: each label becomes prompts (the templates, else the domain's); the mean prompt
        embedding is the class embedding."""
        labels = check_texts(labels, self.limits, "labels")
        templates = check_templates(templates, self.limits)  # before any template is filled in
        if domain not in TEMPLATES:
            raise InvalidArgument(f"unknown domain {domain!r}; choose one of {sorted(TEMPLATES)}")
        per_label = prompts(labels, templates, domain)
        flat, _ = await self._texts([p for group in per_label for p in group], "prompts")
        classes = flat.reshape(len(labels), -1, flat.shape[-1]).mean(axis=1)
        classes /= np.linalg.norm(classes, axis=1, keepdims=True)
        probabilities = _softmax(self.logit_scale * (await self._images(images)) @ classes.T)
        return Classification(labels=labels, probabilities=probabilities.tolist(),
                              predictions=[labels[i] for i in probabilities.argmax(axis=1)])

    @bentoml.api
    async def search(self, texts: list[str], k: int = 5) -> SearchResult:
        """Top-k gallery images (embedded at package time) for each text query."""
        self._check_search(k)
        return self._hits((await self._texts(texts))[0], k)

    @bentoml.api
    async def search_images(self, images: list[Image.Image], k: int = 5) -> SearchResult:
        """Top-k gallery images for each image query (files or base64)."""
        self._check_search(k)
        return self._hits(await self._images(images), k)

    def _check_search(self, k: int) -> None:
        if self.gallery is None:
            raise InvalidArgument("this bento was packaged without a gallery; package it with one to search")
        if not 1 <= k <= 100:
            raise InvalidArgument("k must be between 1 and 100")

    def _hits(self, queries: np.ndarray, k: int) -> SearchResult:
        if self.query_map is not None:  # the gallery lives in an older space: queries are mapped into it
            queries = self.query_map.apply(queries)
        hits = [[Hit(rank=r + 1, score=score, item=self.gallery.items[i]) for r, (i, score) in enumerate(found)]
                for found in self.gallery.search(queries, k)]
        return SearchResult(hits=hits, gallery_size=len(self.gallery.items), indexed=self.gallery.indexed)


def _query_projection(path: Path) -> Projection | None:
    """The projection of this model's queries into the space its gallery was embedded in, where that is an
    older model's (the package flow allowed the pairing only when the model carries one)."""
    pairing = path / GALLERY_DIR / QUERY_SPACE_FILE
    space = json.loads(pairing.read_text())["space"] if pairing.exists() else None
    return Projection.load(path, space) if space else None


# Outermost first: the credential is judged from the headers before the body limit reads a byte.
EmbeddingService.add_asgi_middleware(Authenticate)
EmbeddingService.add_asgi_middleware(hardening.BodyLimit, max_bytes=ARGS.limits.max_body_bytes)


def _embedder(model_dir: Path) -> Embedder:
    """The towers in PyTorch, or in onnxruntime over the graphs exported from the verified weights at packaging
    (checked against the digests recorded then; the package's smoke test compared their embeddings)."""
    if ARGS.runtime == "onnx":
        from components.interop.onnx import onnx_embedder

        return onnx_embedder(model_dir)
    return Embedder.load(model_dir, ARGS.encoder_device())


def _freeze_startup_objects() -> None:
    """Exempt what start-up made (torch, transformers, the model: ~10^6 objects) from garbage collection.
    A full collection walks them all, ~0.3 s here, and stalled every in-flight request every second
    or two under load; requests' own garbage is still collected."""
    gc.collect()
    gc.freeze()


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)
