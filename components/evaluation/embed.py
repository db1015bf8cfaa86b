"""Encode an eval split of a dataset with a model artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from components.data.manifest import read_manifest, resolve_image
from components.models.embedder import Embedder


@dataclass
class EncodedSplit:
    image_emb: torch.Tensor
    text_emb: torch.Tensor
    text_to_image: torch.Tensor  # caption j belongs to image text_to_image[j]
    image_paths: list[str]
    image_ids: list[str]
    captions: list[str]
    image_labels: list[str | None]  # the manifest's `label`, where it has one
    image_persons: list[str | None]  # `person_id`, per image and per caption
    text_persons: list[str | None]


def encode_split(embedder: Embedder, dataset_dir: Path, split: str = "test",
                 exclude_sample_ids: frozenset[str] = frozenset()) -> EncodedSplit:
    manifest = read_manifest(dataset_dir, exclude=exclude_sample_ids)
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise ValueError(f"split {split!r} of {dataset_dir} has no rows to evaluate")
    images = rows.drop_duplicates("image_id")
    index = {image_id: i for i, image_id in enumerate(images["image_id"])}
    image_paths = images["image"].tolist()
    captions = rows["caption"].astype(str).tolist()
    return EncodedSplit(
        image_emb=torch.from_numpy(embedder.encode_images([resolve_image(dataset_dir, p) for p in image_paths])),
        text_emb=torch.from_numpy(embedder.encode_texts(captions)),
        text_to_image=torch.tensor([index[i] for i in rows["image_id"]]),
        image_paths=image_paths, image_ids=images["image_id"].tolist(), captions=captions,
        image_labels=_column(images, "label"), image_persons=_column(images, "person_id"),
        text_persons=_column(rows, "person_id"))


def _column(frame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if value is None or value != value else str(value) for value in frame[name]]
