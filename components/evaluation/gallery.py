"""Top-k search over a gallery of L2-normalised embeddings, by FAISS: exact inner product while the gallery
fits (`EXACT_UP_TO`), an inverted-file index (IVF, `nlist` k-means cells, `nprobe` of them searched) beyond.

On disk a gallery is plain data: `embeddings.safetensors` (the vectors and, for IVF, the cell centroids),
`items.json` and `index.json` (the index's kind and parameters). The FAISS index is rebuilt from them at load
(adding vectors to trained cells takes seconds even at 1M), so no serialised C++ index is ever parsed from
bytes that came from elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
from pydantic import BaseModel, Field
from safetensors.numpy import load_file, save_file

EXACT_UP_TO = 50_000  # embeddings; beyond this, package time trains an IVF index
GALLERY_DIR = "gallery"  # inside a packaged model directory
QUERY_SPACE_FILE = "query_space.json"  # beside a packaged gallery: the older space queries are projected into
MAX_GALLERY = 50_000_000  # vectors: bounded before anything is read or trained
MAX_K = 1000


class IndexParams(BaseModel):
    """How a gallery is searched; recorded beside the vectors so a version says what made its answers."""

    kind: str = Field("exact", pattern="^(exact|ivf)$")
    nlist: int = Field(0, ge=0, le=1_000_000)  # IVF cells
    nprobe: int = Field(1, ge=1, le=1_000_000)  # cells searched per query
    seed: int = 0

    @classmethod
    def for_size(cls, size: int, exact_up_to: int = EXACT_UP_TO, seed: int = 0) -> IndexParams:
        """Exact while it fits; else IVF with ~4·sqrt(N) cells (FAISS's guideline) and 1/64 of them probed
        (about 0.95 recall@10 on clustered data; benchmarks/gallery_index.py)."""
        if size <= exact_up_to:
            return cls()
        nlist = int(4 * np.sqrt(size))
        return cls(kind="ivf", nlist=nlist, nprobe=max(8, nlist // 64), seed=seed)


class Gallery:
    def __init__(self, embeddings: np.ndarray, items: list[dict], params: IndexParams | None = None,
                 centroids: np.ndarray | None = None):
        if len(items) != len(embeddings):
            raise ValueError(f"a gallery needs one item per embedding ({len(items)} items, {len(embeddings)} "
                             "embeddings)")
        if not 0 < len(embeddings) <= MAX_GALLERY:
            raise ValueError(f"a gallery holds 1 to {MAX_GALLERY:,} embeddings, not {len(embeddings):,}")
        if not np.isfinite(embeddings).all():
            raise ValueError("a gallery's embeddings must be finite: the model that made them is broken")
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.items, self.params = items, params or IndexParams()
        self.centroids = None if centroids is None else np.ascontiguousarray(centroids, dtype=np.float32)
        self.index = _index(self.embeddings, self.params, self.centroids)
        if self.params.kind == "ivf" and self.centroids is None:
            self.centroids = self.index.quantizer.reconstruct_n(0, self.params.nlist)

    @classmethod
    def build(cls, embeddings: np.ndarray, items: list[dict], exact_up_to: int = EXACT_UP_TO,
              seed: int = 0) -> Gallery:
        return cls(embeddings, items, IndexParams.for_size(len(embeddings), exact_up_to, seed))

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    @property
    def indexed(self) -> bool:
        return self.params.kind != "exact"

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, (gallery index, cosine) of the k best, best first."""
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, not {k}")
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have {queries.shape[1]} dimensions; this gallery's space has {self.dim}")
        scores, ids = self.index.search(queries, min(k, len(self.items)))
        # IVF may find fewer than k in the probed cells: FAISS pads with -1, which is no answer.
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                for row_ids, row_scores in zip(ids, scores, strict=True)]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"embeddings": self.embeddings}
        if self.centroids is not None:
            tensors["centroids"] = self.centroids
        save_file(tensors, str(directory / "embeddings.safetensors"))
        (directory / "items.json").write_text(json.dumps(self.items))
        (directory / "index.json").write_text(self.params.model_dump_json())

    @classmethod
    def load(cls, directory: Path) -> Gallery:
        tensors = load_file(str(directory / "embeddings.safetensors"))
        params = IndexParams.model_validate_json((directory / "index.json").read_text())
        return cls(tensors["embeddings"], json.loads((directory / "items.json").read_text()), params,
                   tensors.get("centroids"))


def _index(embeddings: np.ndarray, params: IndexParams, centroids: np.ndarray | None) -> faiss.Index:
    dim = embeddings.shape[1]
    if params.kind == "exact":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, params.nlist, faiss.METRIC_INNER_PRODUCT)
        if centroids is None:
            # cosine cells, reproducible; 10 rounds on 64 points per cell train 1M vectors in well under a minute
            index.cp.seed, index.cp.spherical, index.cp.niter = params.seed, True, 10
            index.cp.max_points_per_centroid = 64
            index.train(embeddings)
        else:
            if centroids.shape != (params.nlist, dim):
                raise ValueError(f"the index's centroids are {centroids.shape}, its parameters say "
                                 f"({params.nlist}, {dim}): the gallery is damaged; build it again")
            index.quantizer.add(centroids)
            index.is_trained = True
        index.nprobe = params.nprobe
    index.add(embeddings)
    return index
