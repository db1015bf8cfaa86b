"""Top-k search over a gallery of L2-normalised embeddings: exact (one matrix product) while it fits,
an inverted-file index (k-means cells; `nprobe` nearest cells searched) for large galleries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

EXACT_UP_TO = 50_000  # embeddings; beyond this, package time builds an IVF index
GALLERY_DIR = "gallery"  # inside a packaged model directory


class Gallery:
    def __init__(self, embeddings: np.ndarray, items: list[dict], centroids: np.ndarray | None = None,
                 assignments: np.ndarray | None = None, nprobe: int = 8):
        if len(items) != len(embeddings):
            raise ValueError("one item per embedding")
        self.embeddings, self.items, self.nprobe = embeddings.astype(np.float32), items, nprobe
        self.centroids, self.assignments = centroids, assignments

    @classmethod
    def build(cls, embeddings: np.ndarray, items: list[dict], exact_up_to: int = EXACT_UP_TO,
              seed: int = 0) -> Gallery:
        if len(embeddings) <= exact_up_to:
            return cls(embeddings, items)
        centroids, assignments = kmeans(embeddings, n_cells=int(4 * np.sqrt(len(embeddings))), seed=seed)
        return cls(embeddings, items, centroids, assignments)

    @property
    def indexed(self) -> bool:
        return self.centroids is not None

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, (gallery index, cosine) of the k best, best first."""
        if not self.indexed:
            return [_top(scores, np.arange(len(scores)), k) for scores in queries @ self.embeddings.T]
        results = []
        for query in queries:
            cells = np.argsort(-(self.centroids @ query))[:self.nprobe]
            candidates = np.flatnonzero(np.isin(self.assignments, cells))
            results.append(_top(self.embeddings[candidates] @ query, candidates, k))
        return results

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "embeddings.npy", self.embeddings)
        (directory / "items.json").write_text(json.dumps(self.items))
        if self.indexed:
            np.save(directory / "centroids.npy", self.centroids)
            np.save(directory / "assignments.npy", self.assignments)

    @classmethod
    def load(cls, directory: Path) -> Gallery:
        index = [np.load(directory / f"{n}.npy") if (directory / f"{n}.npy").exists() else None
                 for n in ("centroids", "assignments")]
        return cls(np.load(directory / "embeddings.npy"), json.loads((directory / "items.json").read_text()), *index)


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(ids[i]), float(scores[i])) for i in best]


def kmeans(x: np.ndarray, n_cells: int, iterations: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine): centroids re-normalised each step."""
    rng = np.random.default_rng(seed)
    centroids = x[rng.choice(len(x), size=n_cells, replace=False)].copy()
    for _ in range(iterations):
        assignments = np.concatenate([np.argmax(chunk @ centroids.T, axis=1) for chunk in np.array_split(
            x, max(1, len(x) // 8192))])
        for c in range(n_cells):
            members = x[assignments == c]
            if len(members):
                centroid = members.sum(axis=0)
                centroids[c] = centroid / max(np.linalg.norm(centroid), 1e-12)
    return centroids, assignments
