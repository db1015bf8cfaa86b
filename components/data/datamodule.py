"""Torch datasets over a manifest or WebDataset shards, and the Lightning DataModule that serves them.

Items are dicts (`pixels`, `token_ids`, `image_group`, `caption`, and `person_id` where the data has
one), collated into the `Batch` the objectives read. The training loader is torchdata's
`StatefulDataLoader`: Lightning saves its position in the epoch in every checkpoint, and the permutation
is a function of (seed, epoch), so a run resumed mid-epoch sees exactly the batches the uninterrupted run
would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from components.config import Augmentation, DataSection
from components.data.augment import augment
from components.data.manifest import read_manifest, resolve_image
from components.data.streaming import ShardPairs, rank_and_world
from components.data.transforms import ImageTransform
from components.text.tokenizer import CaptionTokenizer


def codes(values: pd.Series) -> list[int]:
    """Stable integer codes of ids (the order of first appearance)."""
    return pd.factorize(values.astype(str))[0].tolist()


class PairDataset(Dataset):
    """One item per manifest row. Training samplers pass keys `epoch * len + row`, so an augmentation's
    randomness is a function of (seed, epoch, row), the same in any worker and after a resume."""

    def __init__(self, dataset_dir: Path, rows: pd.DataFrame, tokenizer: CaptionTokenizer, transform: ImageTransform,
                 *, augment: Augmentation | None = None, seed: int = 0):
        self.dataset_dir, self.transform, self.augment, self.seed = Path(dataset_dir), transform, augment, seed
        self.images, self.captions = rows["image"].tolist(), rows["caption"].astype(str).tolist()
        self.tokens = tokenizer(self.captions)
        self.groups = codes(rows["image_id"])
        has_person = "person_id" in rows.columns and rows["person_id"].notna().all()
        self.persons = codes(rows["person_id"]) if has_person else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> dict:
        index = key % len(self.images)
        image = self.transform.decode(resolve_image(self.dataset_dir, self.images[index]))
        if self.augment is not None:
            image = augment(image, random.Random(f"{self.seed}:{key}"), self.augment)
        pixels = self.transform.normalise(self.transform.fit_decoded(image))
        item = {"pixels": pixels, "token_ids": self.tokens[index], "image_group": self.groups[index],
                "caption": self.captions[index]}
        if self.persons is not None:
            item["person_id"] = self.persons[index]
        return item


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class EpochPermutationSampler(Sampler[int]):
    """A permutation that is a pure function of (seed, epoch), split evenly across ranks: Lightning sets the
    epoch on resume, and the loader skips what the checkpoint says was consumed, so the order never depends
    on generator state carried across epochs."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // rank_and_world()[1]

    def __iter__(self) -> Iterator[int]:
        rank, world = rank_and_world()
        order = torch.randperm(self.size, generator=_generator(self.seed, self.epoch))
        share = len(self)
        return iter((order[rank * share:(rank + 1) * share] + self.epoch * self.size).tolist())


class IdentityBatchSampler(Sampler[list[int]]):
    """Person search's P x K batches: P identities, K images of each (drawn again, with repeats, for an
    identity with fewer), so every row has positives in its batch. Batches are split across ranks."""

    def __init__(self, person_ids: list[int], identities_per_batch: int, images_per_identity: int, seed: int):
        self.size, self.p, self.k, self.seed, self.epoch = len(person_ids), identities_per_batch, images_per_identity, \
            seed, 0
        self.rows: dict[int, list[int]] = {}
        for row, person in enumerate(person_ids):
            self.rows.setdefault(person, []).append(row)
        if len(self.rows) < identities_per_batch:
            raise ValueError(f"{len(self.rows)} identities in the training split: fewer than the "
                             f"{identities_per_batch} a batch needs; lower batch_size or images_per_identity")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows) // self.p // rank_and_world()[1]

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = rank_and_world()
        generator = _generator(self.seed, self.epoch)
        identities = list(self.rows)
        people = [identities[i] for i in torch.randperm(len(identities), generator=generator)]
        batches = []
        for start in range(0, len(people) - self.p + 1, self.p):
            batch = []
            for person in people[start:start + self.p]:
                rows = self.rows[person]
                picks = torch.randperm(len(rows), generator=generator).tolist()
                batch += [rows[picks[i % len(rows)]] + self.epoch * self.size for i in range(self.k)]
            batches.append(batch)
        return iter(batches[rank::world][:len(self)])


class ReplayPairs(Dataset):
    """Domain rows followed by replayed rows of a general dataset (rehearsal, against forgetting). Replayed
    images get their own image groups and, where the domain has identities, one identity per image, so
    they never count as positives of a domain row."""

    def __init__(self, domain: PairDataset, replay: PairDataset):
        self.domain, self.replay = domain, replay
        offset = max(domain.groups, default=-1) + 1
        self.groups = domain.groups + [offset + g for g in replay.groups]
        first_person = max(domain.persons, default=-1) + 1 if domain.persons is not None else None
        self.persons = None if first_person is None else domain.persons + [first_person + g for g in replay.groups]

    def __len__(self) -> int:
        return len(self.domain) + len(self.replay)

    def __getitem__(self, key: int) -> dict:
        epoch, index = divmod(key, len(self))
        part, local = (self.domain, index) if index < len(self.domain) else (self.replay, index - len(self.domain))
        item = part[epoch * len(part) + local]
        item["image_group"] = self.groups[index]
        if self.persons is not None:
            item["person_id"] = self.persons[index]
        return item


class PairDataModule(L.LightningDataModule):
    def __init__(self, dataset_dir: Path, tokenizer: CaptionTokenizer, transform: ImageTransform, data: DataSection,
                 *, seed: int = 0, exclude: frozenset[str] = frozenset(), replay_dir: Path | None = None,
                 replay_exclude: frozenset[str] = frozenset()):
        """Training pairs from `dataset_dir`'s train split (or `data.train_shards`, streamed: validation still
        reads the manifest), quarantined `exclude` rows left out. `data.augment` applies to training images
        only; `data.images_per_identity` > 0 draws P x K identity batches (needs `person_id`);
        `replay_dir`'s train split (its quarantined `replay_exclude` rows left out) makes up
        `data.replay_fraction` of the training set (not augmented)."""
        super().__init__()
        self.dataset_dir, self.tokenizer, self.transform = Path(dataset_dir), tokenizer, transform
        self.batch_size, self.num_workers, self.exclude = data.batch_size, data.num_workers, exclude
        self.seed, self.train_shards = seed, data.train_shards
        self.augment = data.augment if data.augment.enabled else None
        self.images_per_identity = data.images_per_identity
        self.replay_dir, self.replay_exclude, self.replay_fraction = replay_dir, replay_exclude, data.replay_fraction

    def setup(self, stage: str | None = None) -> None:
        manifest = read_manifest(self.dataset_dir, exclude=self.exclude)
        if self.train_shards:
            self.train_set = ShardPairs(self.train_shards, self.tokenizer, self.transform, self.seed, self.exclude)
        else:
            self.train_set = self._pairs(manifest, "train", self.augment)
            if self.replay_dir and self.replay_fraction > 0:
                self.train_set = ReplayPairs(self.train_set, self._replay(len(self.train_set)))
        self.val_set = self._pairs(manifest, "val")

    def _replay(self, domain_rows: int) -> PairDataset:
        general = read_manifest(Path(self.replay_dir), exclude=self.replay_exclude)
        rows = general[general["split"] == "train"]
        wanted = min(len(rows), round(domain_rows * self.replay_fraction / (1 - self.replay_fraction)))
        rows = rows.sample(n=wanted, random_state=self.seed).drop(columns=["person_id"], errors="ignore")
        return PairDataset(Path(self.replay_dir), rows, self.tokenizer, self.transform, seed=self.seed)

    def _pairs(self, manifest: pd.DataFrame, split: str, augment: Augmentation | None = None) -> PairDataset:
        rows = manifest[manifest["split"] == split]
        return PairDataset(self.dataset_dir, rows, self.tokenizer, self.transform, augment=augment, seed=self.seed)

    def _loader_options(self) -> dict:
        return {"batch_size": self.batch_size, "num_workers": self.num_workers,
                "pin_memory": torch.cuda.is_available(), "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> StatefulDataLoader:
        # drop_last keeps every contrastive batch (and every rank's slice) the same size.
        if isinstance(self.train_set, ShardPairs):
            return StatefulDataLoader(self.train_set, drop_last=True, **self._loader_options())
        if self.images_per_identity:
            if self.train_set.persons is None:
                raise ValueError("identity batches need a `person_id` for every training row")
            sampler = IdentityBatchSampler(self.train_set.persons, self.batch_size // self.images_per_identity,
                                           self.images_per_identity, self.seed)
            options = {k: v for k, v in self._loader_options().items() if k != "batch_size"}
            return StatefulDataLoader(self.train_set, batch_sampler=sampler, **options)
        sampler = EpochPermutationSampler(len(self.train_set), self.seed)
        return StatefulDataLoader(self.train_set, sampler=sampler, drop_last=True, **self._loader_options())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, **self._loader_options())
