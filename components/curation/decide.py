"""Which train rows a curation drops, and under which rule (the first of `RULES` that applies).

Duplicates are found among distinct images: the same bytes (sha256), a perceptual hash a few bits away,
and, where asked, embeddings closer than a cosine threshold (through the galleries' FAISS index). Each
cluster keeps its first image in manifest order. Leakage compares train images and captions with the
reference data: the dataset's own val/test splits and every named eval set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from components.curation.hashing import hash_matches
from components.curation.rules import CurationRules
from components.evaluation.gallery import Gallery

NEIGHBOURS = 10  # per image, when near duplicates are found by embedding


@dataclass
class Fingerprints:
    """Distinct images, aligned: what duplicate and leakage checks compare."""

    image_ids: list[str]
    sha256: list[str]
    hashes: np.ndarray  # (N, FINGERPRINT_BYTES) uint8: pHash and colour thumbnail
    embeddings: np.ndarray | None = None  # (N, D) L2-normalised, where embedding matches are asked for

    def subset(self, keep: np.ndarray) -> Fingerprints:
        return Fingerprints([self.image_ids[i] for i in keep], [self.sha256[i] for i in keep], self.hashes[keep],
                            None if self.embeddings is None else self.embeddings[keep])


@dataclass
class Reference:
    """Eval data that training must not overlap."""

    images: Fingerprints
    captions: dict[str, int] = field(default_factory=dict)  # normalised caption -> eval images it describes


@dataclass
class Decision:
    rule: pd.Series  # per row of the manifest: the rule that dropped it, "" where kept
    score_thresholds: dict[str, float]  # per source ("all" without the column): the lowest train score kept
    shared_caption: pd.Series  # per row: a train caption an eval image shares (dropped only where asked)


def normalised(caption: str) -> str:
    return " ".join(str(caption).lower().split()).strip(" .!?")


def decide(rows: pd.DataFrame, images: Fingerprints, scores: np.ndarray | None, rules: CurationRules,
           reference: Reference) -> Decision:
    """`rows` is the manifest (quarantined rows already left out), `images` every image it names, `scores`
    one cosine per row (needed when the rules filter by score)."""
    rule = pd.Series("", index=rows.index, dtype=object)
    train = (rows["split"] == "train").to_numpy()
    train_images = _positions(images, set(rows.loc[train, "image_id"]))
    _drop_images(rule, rows, train, leaked_images(images.subset(train_images), reference, rules), "leakage")
    leaked_captions, shared = caption_matches(rows, train, reference, rules)
    rule[leaked_captions & (rule == "").to_numpy()] = "leakage"
    shared &= (rule == "").to_numpy()
    if rules.drop_shared_captions:
        rule[shared] = "shared_caption"
    if rules.dedup:
        remaining = images.subset(_positions(images, set(rows.loc[train & (rule == "").to_numpy(), "image_id"])))
        exact, near = duplicate_images(remaining, rules)
        _drop_images(rule, rows, train, exact, "duplicate_image")
        _drop_images(rule, rows, train, near, "near_duplicate_image")
        repeated = rows.assign(text=rows["caption"].map(normalised)).duplicated(["image_id", "text"]).to_numpy()
        rule[train & repeated & (rule == "").to_numpy()] = "duplicate_caption"
    thresholds = {}
    if rules.scores_rows:
        if scores is None:
            raise ValueError("score rules need a score per row")
        thresholds = _score_rule(rule, rows, train, scores, rules)
    return Decision(rule=rule, score_thresholds=thresholds, shared_caption=pd.Series(shared, index=rows.index))


def caption_matches(rows: pd.DataFrame, train: np.ndarray, reference: Reference,
                    rules: CurationRules) -> tuple[np.ndarray, np.ndarray]:
    """(leaked, shared): train rows whose caption is also an eval caption. Leakage only where the caption is
    specific: long enough, on one eval image and one train image, so it names that picture (a test pair
    copied in with an altered image). A caption that is short, or describes several pictures ("a dog in a
    field"), describes different photos alike: shared, not leaked."""
    text = rows["caption"].map(normalised)
    matched = train & text.isin(reference.captions.keys()).to_numpy()
    train_images = rows[train].assign(text=text[train]).groupby("text")["image_id"].nunique()
    specific = np.array([len(t.split()) >= rules.specific_caption_words and reference.captions.get(t, 0) == 1
                         and train_images.get(t, 0) == 1 for t in text], dtype=bool)
    return matched & specific, matched & ~specific


def leaked_images(train: Fingerprints, reference: Reference, rules: CurationRules) -> set[str]:
    """Train images that are, or nearly are, an image of the reference data."""
    ref = reference.images
    leaked = {image_id for image_id, sha in zip(train.image_ids, train.sha256, strict=True) if sha in set(ref.sha256)}
    leaked |= {train.image_ids[q] for q, _ in hash_matches(train.hashes, ref.hashes, rules.hash_distance)}
    if rules.embedding_cosine is not None and train.embeddings is not None and ref.embeddings is not None \
            and len(train.image_ids) and len(ref.image_ids):
        hits = Gallery.build(ref.embeddings, [{}] * len(ref.image_ids)).search(train.embeddings, 1)
        leaked |= {train.image_ids[q] for q, found in enumerate(hits) if found[0][1] >= rules.embedding_cosine}
    return leaked


def duplicate_images(images: Fingerprints, rules: CurationRules) -> tuple[set[str], set[str]]:
    """(exact copies, near copies) to drop: every image of a cluster but its first."""
    first_of_sha: dict[str, int] = {}
    exact = set()
    for i, sha in enumerate(images.sha256):
        if sha in first_of_sha:
            exact.add(images.image_ids[i])
        first_of_sha.setdefault(sha, i)
    unique = np.array(sorted(first_of_sha.values()), dtype=int)
    distinct = images.subset(unique)
    pairs = _hash_pairs(distinct.hashes, rules.hash_distance)
    if rules.embedding_cosine is not None and distinct.embeddings is not None and len(unique) > 1:
        found = Gallery.build(distinct.embeddings, [{}] * len(unique)).search(
            distinct.embeddings, min(NEIGHBOURS, len(unique)))
        pairs += [(a, b) for a, hits in enumerate(found) for b, cosine in hits
                  if a != b and cosine >= rules.embedding_cosine]
    cluster = _clusters(len(unique), pairs)
    near = {distinct.image_ids[i] for i in range(len(unique)) if cluster[i] != i}
    return exact, near


def _hash_pairs(hashes: np.ndarray, max_distance: int | None) -> list[tuple[int, int]]:
    """Pairs of near-copy images by hash. Identical fingerprints are paired with their first before the
    search, which then runs over one of each: the search looks at a bounded number of neighbours, and two
    groups of identical copies larger than that, a bit apart, would otherwise never meet."""
    if max_distance is None:
        return []
    first_of: dict[bytes, int] = {}
    pairs = [(i, first_of.setdefault(row.tobytes(), i)) for i, row in enumerate(hashes)]
    representatives = np.array(sorted(set(first_of.values())), dtype=int)
    found = hash_matches(hashes[representatives], hashes[representatives], max_distance)
    return [(a, b) for a, b in pairs if a != b] + [(int(representatives[a]), int(representatives[b]))
                                                    for a, b in found if a != b]


def _clusters(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Union-find; each element's cluster is named by its smallest member, so the first image is kept."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(n)]


def _positions(images: Fingerprints, image_ids: set[str]) -> np.ndarray:
    return np.array([i for i, image_id in enumerate(images.image_ids) if image_id in image_ids], dtype=int)


def _drop_images(rule: pd.Series, rows: pd.DataFrame, train: np.ndarray, image_ids: set[str], name: str) -> None:
    rule[train & rows["image_id"].isin(image_ids).to_numpy() & (rule == "").to_numpy()] = name


def _score_rule(rule: pd.Series, rows: pd.DataFrame, train: np.ndarray, scores: np.ndarray,
                rules: CurationRules) -> dict[str, float]:
    """Drop low-scored train rows; a fraction is kept per source, best first (ties: manifest order), so
    exactly ceil(F·n) rows of each source stay."""
    candidates = rows[train & (rule == "").to_numpy()]
    groups = candidates.groupby("source", sort=True) if "source" in rows.columns else [("all", candidates)]
    thresholds = {}
    for source, group in groups:
        position = rows.index.get_indexer(group.index)
        group_scores = scores[position]
        if rules.min_score is not None:
            dropped = group_scores < rules.min_score
        else:
            order = np.lexsort((np.arange(len(group)), -group_scores))
            dropped = np.ones(len(group), dtype=bool)
            dropped[order[:math.ceil(rules.keep_fraction * len(group))]] = False
        rule.loc[group.index[dropped]] = "low_score"
        kept = group_scores[~dropped]
        thresholds[str(source)] = float(kept.min()) if len(kept) else float("nan")
    return thresholds
