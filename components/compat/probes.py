"""Old and new answers compared on probe queries before a gallery is swapped: how much of the top k the two
share (overlap@k) and how often each finds the image a labelled probe describes (recall@k)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from components.data.manifest import read_manifest

MAX_PROBES = 10_000  # a probe set is a sample: bounded so that a huge split cannot stall an upgrade


class Probes(BaseModel):
    """Captions of a dataset split, each labelled with the image it describes."""

    captions: list[str]
    image_ids: list[str]

    @classmethod
    def of_split(cls, dataset_dir: Path, split: str, limit: int = 1000, seed: int = 0) -> Probes:
        if not 1 <= limit <= MAX_PROBES:
            raise ValueError(f"a probe set holds 1 to {MAX_PROBES} captions, not {limit}")
        manifest = read_manifest(dataset_dir)
        rows = manifest[manifest["split"] == split]
        if rows.empty:
            raise ValueError(f"split {split!r} of {dataset_dir} has no captions to probe with: name another "
                             "split (--split)")
        rows = rows.sample(n=min(limit, len(rows)), random_state=seed)
        return cls(captions=rows["caption"].astype(str).tolist(), image_ids=rows["image_id"].astype(str).tolist())


class ProbeComparison(BaseModel):
    probes: int
    k: int
    overlap: float  # mean share of the old top k found in the new top k
    recall_before: float
    recall_after: float

    def regressed(self, tolerance: float) -> bool:
        return self.recall_after < self.recall_before - tolerance

    def summary(self) -> str:
        return (f"{self.probes} probes: overlap@{self.k} {self.overlap:.3f}, recall@{self.k} "
                f"{self.recall_before:.3f} before, {self.recall_after:.3f} after")


def compare_answers(before: list[list[str]], after: list[list[str]], labels: list[str], k: int) -> ProbeComparison:
    """`before[i]` and `after[i]`: the item ids the old and the new pair answer probe i with, best first;
    `labels[i]`: the id it describes. An answer shorter than k (an IVF probing too few cells) counts its
    missing places as misses, never as agreement."""
    if not len(before) == len(after) == len(labels) > 0:
        raise ValueError("compare the same probes: one answer before, one after and one label each")
    overlap = np.mean([len(set(b[:k]) & set(a[:k])) / k for b, a in zip(before, after, strict=True)])
    return ProbeComparison(probes=len(labels), k=k, overlap=float(overlap),
                           recall_before=float(np.mean([y in b[:k] for b, y in zip(before, labels, strict=True)])),
                           recall_after=float(np.mean([y in a[:k] for a, y in zip(after, labels, strict=True)])))
