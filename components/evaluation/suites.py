"""Metric suites: what a domain is measured with, on one split. Names follow the contract (`t2i_r1`,
`mean_recall`, `zs_top1`, `map`, `minp`), prefixed by the eval set (`Measurement.named`).

Every suite also records how spread out the image and text embeddings are (`image_effective_rank`,
`text_mean_cosine`, …), so a policy can refuse a collapsed model, and a 95% interval with the number of
queries for each metric that has one."""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from pathlib import Path

import torch
from pydantic import BaseModel, Field

from components.backdoor.trigger import BackdoorProbe
from components.evaluation.backdoor import measure_backdoor
from components.evaluation.embed import EncodedSplit, encode_split
from components.evaluation.evidence import Interval, check_finite, embedding_spread
from components.evaluation.metric_names import prefixed
from components.evaluation.person import KS, person_search_metrics
from components.evaluation.retrieval import chance_metrics, retrieval_intervals, retrieval_metrics
from components.evaluation.zero_shot import class_embeddings, zero_shot_metrics
from components.models.embedder import Embedder

SUITES = ("retrieval", "zero_shot", "person")


class EvalTarget(BaseModel):
    """One eval set as a run measures it: its name (the prefix of its metrics), where its data is, which
    split, with which suite and prompts, leaving out the rows validation quarantined."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="e.g. `synthetic_test`")
    dataset_dir: str
    split: str = "test"
    suite: str = "retrieval"
    prompt_domain: str = "general"
    exclude: frozenset[str] = frozenset()
    backdoor: BackdoorProbe | None = Field(None, description="also measure this probe's attack success rate")

    def encode(self, embedder: Embedder) -> EncodedSplit:
        """This split's images and captions as `embedder` embeds them (the quarantined rows left out)."""
        return encode_split(embedder, Path(self.dataset_dir), self.split, self.exclude)

    def measure(self, embedder: Embedder) -> Measurement:
        """The suite's figures on this split (and the backdoor probe's), named by the eval set."""
        measurement = measure(embedder, Path(self.dataset_dir), self.split, suite=self.suite,
                              prompt_domain=self.prompt_domain, exclude=self.exclude, name=self.name)
        if self.backdoor is not None:
            attacked = measure_backdoor(embedder, Path(self.dataset_dir), self.backdoor, split=self.split,
                                        exclude=self.exclude)
            measurement.metrics |= attacked.metrics
            measurement.intervals |= attacked.intervals
        return measurement.named(self.name)


@dataclass
class Measurement:
    metrics: dict[str, float]
    chance: dict[str, float]  # chance levels of the metrics that have one
    intervals: dict[str, Interval]  # 95% interval and number of queries of the metrics that have one
    encoded: EncodedSplit

    def named(self, eval_set: str) -> Measurement:
        """The same figures with names prefixed by the eval set (`coco_val/t2i_r1`)."""
        return Measurement(prefixed(self.metrics, eval_set), prefixed(self.chance, eval_set),
                           prefixed(self.intervals, eval_set), self.encoded)


def measure(embedder: Embedder, dataset_dir: Path, split: str, *, suite: str = "retrieval",
            prompt_domain: str = "general", exclude: frozenset[str] = frozenset(), name: str = "",
            ) -> Measurement:
    """Measure one split; `name` (the eval set) names it in errors. Non-finite embeddings are refused."""
    if suite not in SUITES:
        raise ValueError(f"unknown metric suite {suite!r}; choose from {SUITES}")
    encoded = encode_split(embedder, dataset_dir, split, exclude)
    check_finite({"image": encoded.image_emb, "text": encoded.text_emb},
                 f"eval set {name or Path(dataset_dir).name} (split {split})")
    spread = {f"{side}_{stat}": value for side, emb in (("image", encoded.image_emb), ("text", encoded.text_emb))
              for stat, value in embedding_spread(emb).items()}
    if suite == "person":
        metrics, chance, intervals = _person(encoded, dataset_dir, split)
        return Measurement(metrics | spread, chance, intervals, encoded)
    metrics = retrieval_metrics(encoded.image_emb, encoded.text_emb, encoded.text_to_image)
    intervals = retrieval_intervals(metrics, len(encoded.image_paths), len(encoded.captions))
    chance = chance_metrics(encoded.text_to_image, len(encoded.image_paths))
    if suite == "zero_shot":
        zs, zs_chance, zs_intervals = _zero_shot(embedder, encoded, dataset_dir, split, prompt_domain)
        metrics, chance, intervals = metrics | zs, chance | zs_chance, intervals | zs_intervals
    return Measurement(metrics | spread, chance, intervals, encoded)


def _zero_shot(embedder: Embedder, encoded: EncodedSplit, dataset_dir: Path, split: str, prompt_domain: str):
    labelled = [i for i, label in enumerate(encoded.image_labels) if label is not None]
    if not labelled:
        raise ValueError(f"zero-shot evaluation needs a `label` per image; split {split!r} of {dataset_dir} has none")
    classes = sorted({encoded.image_labels[i] for i in labelled})
    labels = torch.tensor([classes.index(encoded.image_labels[i]) for i in labelled])
    metrics, intervals = zero_shot_metrics(encoded.image_emb[labelled], labels,
                                           class_embeddings(embedder, classes, prompt_domain))
    chance = {"zs_top1": 1 / len(classes), "zs_mean_per_class_recall": 1 / len(classes)}
    if "zs_top5" in metrics:
        chance["zs_top5"] = min(1.0, 5 / len(classes))
    return metrics, chance, intervals


def _person(encoded: EncodedSplit, dataset_dir: Path, split: str):
    if any(p is None for p in encoded.text_persons):
        raise ValueError(f"person search needs a `person_id` on every row of split {split!r} of {dataset_dir}")
    ids = {p: n for n, p in enumerate(sorted(set(encoded.image_persons)))}
    image_persons = torch.tensor([ids[p] for p in encoded.image_persons])
    text_persons = torch.tensor([ids.get(p, -1) for p in encoded.text_persons])
    metrics, intervals = person_search_metrics(encoded.text_emb, text_persons, encoded.image_emb, image_persons)
    gallery = len(encoded.image_persons)
    relevant = [int((image_persons == p).sum()) for p in text_persons.tolist()]
    chance = {f"t2i_r{k}": sum(1 - comb(gallery - m, k) / comb(gallery, k) for m in relevant) / len(relevant)
              for k in KS}
    return metrics, chance, intervals
