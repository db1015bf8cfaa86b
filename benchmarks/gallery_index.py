"""Gallery search at scale: the hand-written IVF search that `components/evaluation/gallery.py` had before
FAISS (its candidate selection, `np.isin` over every assignment, kept here as the baseline), FAISS IVF with
the same cells and probes, and FAISS exact search; recall@10 against exact search and queries/s, side by side.

The vectors are clustered (as real embeddings are; uniform random vectors in high dimension have no
neighbours to find). Usage: python -m benchmarks.gallery_index [--size 1000000] [--dim 256] [--queries 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from components.evaluation.gallery import Gallery, IndexParams


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: the float64 temporaries of 1M x 256 would need 4 GB
        stop = min(n, start + 100_000)
        block = centres[rng.integers(0, len(centres), stop - start)] + 0.6 * rng.normal(size=(stop - start, dim))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def old_ivf_search(embeddings, centroids, assignments, nprobe, queries, k):
    """The search as it was: for each query, the probed cells' members found by scanning every assignment."""
    results = []
    for query in queries:
        cells = np.argsort(-(centroids @ query))[:nprobe]
        candidates = np.flatnonzero(np.isin(assignments, cells))
        scores = embeddings[candidates] @ query
        best = np.argpartition(-scores, k - 1)[:k]
        results.append(candidates[best[np.argsort(-scores[best])]].tolist())
    return results


def timed(search, queries) -> tuple[list[list[int]], float]:
    started = time.perf_counter()
    found = search(queries)
    return found, len(queries) / (time.perf_counter() - started)


def recall(found, truth, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, args.dim))
    vectors = clustered(args.size, args.dim, rng, centres)
    queries = clustered(args.queries, args.dim, rng, centres)
    items = [{}] * args.size

    started = time.perf_counter()
    ivf = Gallery(vectors, items, IndexParams.for_size(args.size, exact_up_to=0))
    train_s = time.perf_counter() - started
    exact = Gallery(vectors, items)
    _, assignments = ivf.index.quantizer.search(vectors, 1)  # the same cells for the old search

    def ids(gallery):
        return lambda q: [[i for i, _ in row] for row in gallery.search(q, 10)]

    truth, exact_qps = timed(ids(exact), queries)
    faiss_found, faiss_qps = timed(ids(ivf), queries)
    old_found, old_qps = timed(lambda q: old_ivf_search(vectors, ivf.centroids, assignments[:, 0], ivf.params.nprobe,
                                                        q, 10), queries)
    p = ivf.params
    print(f"{args.size:,} vectors, dim {args.dim}, {args.queries} queries; IVF nlist {p.nlist}, nprobe {p.nprobe} "
          f"(FAISS IVF built in {train_s:.1f} s)")
    print(f"  {'search':22s} {'recall@10':>10s} {'queries/s':>10s}")
    for name, found, qps in (("FAISS exact", truth, exact_qps), ("FAISS IVF", faiss_found, faiss_qps),
                             ("old hand-written IVF", old_found, old_qps)):
        print(f"  {name:22s} {recall(found, truth, 10):10.3f} {qps:10.1f}")
    print(f"FAISS IVF / old IVF: {faiss_qps / old_qps:.1f}x queries/s at the same cells and probes")


if __name__ == "__main__":
    main()
