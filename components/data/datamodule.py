"""Torch datasets over a manifest or WebDataset shards, and the Lightning DataModule that serves them.

Items are dicts (`pixels`, `token_ids`, `image_group`, `caption`, and `person_id` where the data has
one), collated into the `Batch` the objectives read. The training loader is torchdata's
`StatefulDataLoader`: Lightning saves its position in the epoch in every checkpoint, and the permutation
is a function of (seed, epoch), so a run resumed mid-epoch sees exactly the batches the uninterrupted run
would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from components.data.manifest import read_manifest, resolve_image
from components.data.streaming import ShardPairs
from components.data.transforms import ImageTransform
from components.text.tokenizer import CaptionTokenizer


def codes(values: pd.Series) -> list[int]:
    """Stable integer codes of ids (the order of first appearance)."""
    return pd.factorize(values.astype(str))[0].tolist()


class PairDataset(Dataset):
    """One item per manifest row."""

    def __init__(self, dataset_dir: Path, rows: pd.DataFrame, tokenizer: CaptionTokenizer, transform: ImageTransform):
        self.dataset_dir, self.transform = Path(dataset_dir), transform
        self.images, self.captions = rows["image"].tolist(), rows["caption"].astype(str).tolist()
        self.tokens = tokenizer(self.captions)
        self.groups = codes(rows["image_id"])
        has_person = "person_id" in rows.columns and rows["person_id"].notna().all()
        self.persons = codes(rows["person_id"]) if has_person else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        item = {"pixels": self.transform(resolve_image(self.dataset_dir, self.images[index])),
                "token_ids": self.tokens[index], "image_group": self.groups[index], "caption": self.captions[index]}
        if self.persons is not None:
            item["person_id"] = self.persons[index]
        return item


class EpochPermutationSampler(Sampler[int]):
    """A permutation that is a pure function of (seed, epoch): Lightning sets the epoch on resume, and the
    loader skips what the checkpoint says was consumed, so the order never depends on generator state
    carried across epochs."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class PairDataModule(L.LightningDataModule):
    def __init__(self, dataset_dir: str, tokenizer: CaptionTokenizer, transform: ImageTransform,
                 batch_size: int = 128, num_workers: int = 0, exclude_sample_ids: frozenset[str] = frozenset(),
                 seed: int = 0, train_shards: list[str] | None = None):
        """`train_shards`: WebDataset shard paths or s3:// URLs to stream training pairs from instead of the
        manifest's train split (validation still reads the manifest)."""
        super().__init__()
        self.dataset_dir, self.tokenizer, self.transform = Path(dataset_dir), tokenizer, transform
        self.batch_size, self.num_workers, self.exclude = batch_size, num_workers, exclude_sample_ids
        self.seed, self.train_shards = seed, train_shards

    def setup(self, stage: str | None = None) -> None:
        manifest = read_manifest(self.dataset_dir)
        manifest = manifest[~manifest["sample_id"].isin(self.exclude)]
        if self.train_shards:
            self.train_set = ShardPairs(self.train_shards, self.tokenizer, self.transform, self.seed, self.exclude)
        else:
            self.train_set = self._pairs(manifest, "train")
        self.val_set = self._pairs(manifest, "val")

    def _pairs(self, manifest: pd.DataFrame, split: str) -> PairDataset:
        return PairDataset(self.dataset_dir, manifest[manifest["split"] == split], self.tokenizer, self.transform)

    def _loader_options(self) -> dict:
        return {"batch_size": self.batch_size, "num_workers": self.num_workers,
                "pin_memory": torch.cuda.is_available(), "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> StatefulDataLoader:
        # drop_last keeps every contrastive batch (and every rank's slice) the same size.
        streaming = isinstance(self.train_set, ShardPairs)
        sampler = None if streaming else EpochPermutationSampler(len(self.train_set), self.seed)
        return StatefulDataLoader(self.train_set, sampler=sampler, drop_last=True, **self._loader_options())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, **self._loader_options())
