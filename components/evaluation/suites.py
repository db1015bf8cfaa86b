"""Metric suites: what a domain is measured with, on one split. Names follow the contract (`t2i_r1`,
`mean_recall`, `zs_top1`, `map`, `minp`), prefixed by the eval set by the caller."""

from __future__ import annotations

from math import comb
from pathlib import Path

import torch

from components.evaluation.embed import EncodedSplit, encode_split
from components.evaluation.person import KS, person_search_metrics
from components.evaluation.retrieval import chance_metrics, retrieval_metrics
from components.evaluation.zero_shot import class_embeddings, zero_shot_metrics
from components.models.embedder import Embedder

SUITES = ("retrieval", "zero_shot", "person")


def measure(embedder: Embedder, dataset_dir: Path, split: str, suite: str = "retrieval",
            prompt_domain: str = "general", exclude: frozenset[str] = frozenset(),
            ) -> tuple[dict[str, float], dict[str, float], EncodedSplit]:
    """(metrics, chance levels of those that have one, the encoded split)."""
    if suite not in SUITES:
        raise ValueError(f"unknown metric suite {suite!r}; choose from {SUITES}")
    encoded = encode_split(embedder, dataset_dir, split, exclude)
    if suite == "person":
        return (*_person(encoded, dataset_dir, split), encoded)
    metrics = retrieval_metrics(encoded.image_emb, encoded.text_emb, encoded.text_to_image)
    chance = chance_metrics(encoded.text_to_image, len(encoded.image_paths))
    if suite == "zero_shot":
        zs, zs_chance = _zero_shot(embedder, encoded, dataset_dir, split, prompt_domain)
        metrics, chance = metrics | zs, chance | zs_chance
    return metrics, chance, encoded


def _zero_shot(embedder: Embedder, encoded: EncodedSplit, dataset_dir: Path, split: str, prompt_domain: str):
    labelled = [i for i, label in enumerate(encoded.image_labels) if label is not None]
    if not labelled:
        raise ValueError(f"zero-shot evaluation needs a `label` per image; split {split!r} of {dataset_dir} has none")
    classes = sorted({encoded.image_labels[i] for i in labelled})
    labels = torch.tensor([classes.index(encoded.image_labels[i]) for i in labelled])
    metrics = zero_shot_metrics(encoded.image_emb[labelled], labels, class_embeddings(embedder, classes,
                                                                                        prompt_domain))
    chance = {"zs_top1": 1 / len(classes), "zs_mean_per_class_recall": 1 / len(classes)}
    if "zs_top5" in metrics:
        chance["zs_top5"] = min(1.0, 5 / len(classes))
    return metrics, chance


def _person(encoded: EncodedSplit, dataset_dir: Path, split: str):
    if any(p is None for p in encoded.text_persons):
        raise ValueError(f"person search needs a `person_id` on every row of split {split!r} of {dataset_dir}")
    ids = {p: n for n, p in enumerate(sorted(set(encoded.image_persons)))}
    image_persons = torch.tensor([ids[p] for p in encoded.image_persons])
    text_persons = torch.tensor([ids.get(p, -1) for p in encoded.text_persons])
    metrics = person_search_metrics(encoded.text_emb, text_persons, encoded.image_emb, image_persons)
    gallery = len(encoded.image_persons)
    relevant = [int((image_persons == p).sum()) for p in text_persons.tolist()]
    chance = {f"t2i_r{k}": sum(1 - comb(gallery - m, k) / comb(gallery, k) for m in relevant) / len(relevant)
              for k in KS}
    return metrics, chance
