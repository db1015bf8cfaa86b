"""Encode an eval split of a dataset with a model artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from components.data.datamodule import ImageDataset
from components.data.manifest import read_manifest
from components.data.transforms import ImageTransform
from components.models.artifact import ModelArtifact


@dataclass
class EncodedSplit:
    image_emb: torch.Tensor
    text_emb: torch.Tensor
    text_to_image: torch.Tensor
    image_paths: list[str]
    captions: list[str]


def image_transform(artifact: ModelArtifact) -> ImageTransform:
    c = artifact.config
    return ImageTransform(c.vision.image_size, c.image_mean, c.image_std)


@torch.no_grad()
def encode_split(artifact: ModelArtifact, dataset_dir: Path, split: str = "test", batch_size: int = 256,
                 exclude_sample_ids: frozenset[str] = frozenset()) -> EncodedSplit:
    manifest = read_manifest(dataset_dir)
    rows = manifest[(manifest["split"] == split) & ~manifest["sample_id"].isin(exclude_sample_ids)]
    if rows.empty:
        raise ValueError(f"split {split!r} of {dataset_dir} has no rows to evaluate")
    image_ids = list(dict.fromkeys(rows["image_id"]))
    first_path = rows.drop_duplicates("image_id").set_index("image_id")["image"]
    image_paths = [first_path[i] for i in image_ids]
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    model = artifact.model.eval()
    loader = DataLoader(ImageDataset(dataset_dir, image_paths, image_transform(artifact)), batch_size=batch_size)
    image_emb = torch.cat([model.encode_image(pixels) for pixels in loader])
    captions = rows["caption"].astype(str).tolist()
    text_emb = torch.cat([model.encode_text(artifact.tokenizer(captions[i:i + batch_size]))
                          for i in range(0, len(captions), batch_size)])
    text_to_image = torch.tensor([index[i] for i in rows["image_id"]])
    return EncodedSplit(image_emb, text_emb, text_to_image, image_paths, captions)
