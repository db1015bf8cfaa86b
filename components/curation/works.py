"""The images of a dataset read once each: bytes hashed, pixels decoded once for the perceptual hash and, with
a model, for the embedding (curation, galleries); and captions embedded. Works over partitions
(`components/partitions`), whose parts are plain arrays in safetensors, never pickle."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel
from safetensors.numpy import load_file, save_file

from components.curation.hashing import FINGERPRINT_BYTES, fingerprints
from components.data.location import ImageRoot
from components.models.directory import ModelDirectory
from components.partitions.plan import Work, digest

READ_CHUNK = 256  # images decoded and held at once within a partition


class ImagePart(BaseModel, arbitrary_types_allowed=True):
    """Per image, in order: sha256 (32 bytes each), fingerprint (pHash + thumbnail), and the embedding."""

    sha256: np.ndarray  # (N, 32) uint8
    hashes: np.ndarray  # (N, FINGERPRINT_BYTES) uint8
    embeddings: np.ndarray | None  # (N, D) float32

    @property
    def sha256_hex(self) -> list[str]:
        return [row.tobytes().hex() for row in self.sha256]


class ImageWork(Work):
    """Each image read once: its bytes hashed, its pixels decoded once for the pHash (with `perceptual`) and,
    with a model, for the embedding."""

    kind: ClassVar[str] = "images"
    suffix: ClassVar[str] = "safetensors"
    root: ImageRoot
    model: ModelDirectory | None = None
    perceptual: bool = True  # a gallery needs embeddings only: its pHashes would be thrown away

    def identity(self) -> str:  # batch size and device are how, not what
        return digest(self.kind, self.root, self.model and self.model.named, self.perceptual)

    def run(self, items: list[str]) -> ImagePart:
        embedder = self.model.load() if self.model else None
        sha256, hashes, embeddings = [], [], []
        for start in range(0, len(items), READ_CHUNK):
            chunk_sha, chunk_hashes, decoded = fingerprints(self.root, items[start:start + READ_CHUNK],
                                                            perceptual=self.perceptual)
            sha256 += chunk_sha
            hashes.append(chunk_hashes)
            if embedder:
                embeddings.append(embedder.encode_images(decoded))
        return ImagePart(
            sha256=np.frombuffer(b"".join(bytes.fromhex(s) for s in sha256), np.uint8).reshape(len(sha256), 32),
            hashes=np.concatenate(hashes) if hashes else np.zeros((0, FINGERPRINT_BYTES), np.uint8),
            embeddings=None if embedder is None else
            np.concatenate(embeddings) if embeddings else embedder.encode_images([]))

    def save(self, part: ImagePart, path: Path) -> None:
        tensors = {"sha256": part.sha256, "hashes": part.hashes}
        if part.embeddings is not None:
            tensors["embeddings"] = part.embeddings
        save_file(tensors, str(path))

    def load(self, path: Path) -> ImagePart:
        tensors = load_file(str(path))
        return ImagePart(sha256=tensors["sha256"], hashes=tensors["hashes"], embeddings=tensors.get("embeddings"))

    def combine(self, parts: list[ImagePart]) -> ImagePart:
        embedded = [p.embeddings for p in parts]
        return ImagePart(sha256=np.concatenate([p.sha256 for p in parts]),
                         hashes=np.concatenate([p.hashes for p in parts]),
                         embeddings=None if self.model is None else np.concatenate(embedded))


class TextWork(Work):
    """Captions embedded by the model's text tower: (N, D) float32."""

    kind: ClassVar[str] = "texts"
    suffix: ClassVar[str] = "safetensors"
    model: ModelDirectory

    def identity(self) -> str:
        return digest(self.kind, self.model.named)

    def run(self, items: list[str]) -> np.ndarray:
        return self.model.load().encode_texts(items)

    def save(self, part: np.ndarray, path: Path) -> None:
        save_file({"embeddings": part}, str(path))

    def load(self, path: Path) -> np.ndarray:
        return load_file(str(path))["embeddings"]

    def combine(self, parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)
