"""Torch datasets over a manifest and the Lightning DataModule that serves them to training."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from components.data.manifest import read_manifest, resolve_image
from components.data.transforms import ImageTransform
from components.text.tokenizer import CaptionTokenizer


class PairDataset(Dataset):
    """One item per manifest row: (pixels, token ids)."""

    def __init__(self, dataset_dir: Path, rows: pd.DataFrame, tokenizer: CaptionTokenizer, transform: ImageTransform):
        self.dataset_dir, self.transform = Path(dataset_dir), transform
        self.images = rows["image"].tolist()
        self.tokens = tokenizer(rows["caption"].tolist())

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = self.transform(resolve_image(self.dataset_dir, self.images[index]))
        return pixels, self.tokens[index]


class ImageDataset(Dataset):
    """One item per distinct image, for encoding a gallery."""

    def __init__(self, dataset_dir: Path, images: list[str], transform: ImageTransform):
        self.dataset_dir, self.images, self.transform = Path(dataset_dir), images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(resolve_image(self.dataset_dir, self.images[index]))


class PairDataModule(L.LightningDataModule):
    def __init__(self, dataset_dir: str, tokenizer: CaptionTokenizer, transform: ImageTransform,
                 batch_size: int = 128, num_workers: int = 0, exclude_sample_ids: frozenset[str] = frozenset()):
        super().__init__()
        self.dataset_dir, self.tokenizer, self.transform = Path(dataset_dir), tokenizer, transform
        self.batch_size, self.num_workers, self.exclude = batch_size, num_workers, exclude_sample_ids

    def setup(self, stage: str | None = None) -> None:
        manifest = read_manifest(self.dataset_dir)
        manifest = manifest[~manifest["sample_id"].isin(self.exclude)]
        self.train_set = self._pairs(manifest, "train")
        self.val_set = self._pairs(manifest, "val")

    def _pairs(self, manifest: pd.DataFrame, split: str) -> PairDataset:
        return PairDataset(self.dataset_dir, manifest[manifest["split"] == split], self.tokenizer, self.transform)

    def train_dataloader(self) -> DataLoader:
        # drop_last keeps every contrastive batch the same size, so the loss scale is stable.
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.num_workers)
