"""Training pairs streamed from WebDataset tar shards on local disk or S3, for data larger than the disk.

Shards are read sequentially through fsspec (s3:// goes through s3fs and boto's credential chain) and
split across ranks and loader workers, so each shard is read by exactly one consumer per epoch. Each image
yields one of its captions, drawn per epoch; quarantined sample ids are skipped and counted.
"""

from __future__ import annotations

import io
import json
import random
import zlib
from collections.abc import Iterator

import fsspec
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from components.data.shards import ShardLimits, tar_members
from components.data.transforms import ImageTransform
from components.text.tokenizer import CaptionTokenizer

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def stable_code(value: object) -> int:
    """The same integer for the same id in every process (Python's str hash is salted per process)."""
    return zlib.crc32(str(value).encode())


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def read_tar_samples(url: str, limits: ShardLimits | None = None) -> Iterator[dict[str, bytes]]:
    """Members grouped by key (the name up to its first dot), in file order, within `limits`."""
    with fsspec.open(url, "rb") as stream:
        key, sample = None, {}
        for name_key, extension, data in tar_members(stream, url, limits or ShardLimits()):
            if name_key != key and sample:
                yield sample
                sample = {}
            if extension in sample:
                raise ValueError(f"shard {url}: key {name_key!r} has two .{extension} members; keys must be unique")
            key = name_key
            sample[extension] = data
        if sample:
            yield sample


class ShardPairs(IterableDataset):
    def __init__(self, urls: list[str], tokenizer: CaptionTokenizer, transform: ImageTransform, seed: int = 0,
                 exclude_sample_ids: frozenset[str] = frozenset()):
        self.urls, self.tokenizer, self.transform = sorted(urls), tokenizer, transform
        self.seed, self.exclude, self.epoch = seed, exclude_sample_ids, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def my_shards(self) -> list[str]:
        rank, world = rank_and_world()
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        consumers = world * workers
        if len(self.urls) < consumers:
            raise ValueError(f"{len(self.urls)} shards for {world} ranks x {workers} workers: write at least "
                             f"{consumers} shards (alignops data shard --samples-per-shard) or use fewer workers")
        order = random.Random(self.seed + self.epoch).sample(self.urls, len(self.urls))
        return order[rank * workers + worker_id::consumers]

    def __iter__(self) -> Iterator[dict]:
        shards = self.my_shards()
        rng = random.Random(f"{self.seed}:{self.epoch}:{','.join(shards)}")  # str seeds are stable
        for url in shards:
            for sample in read_tar_samples(url):
                item = self._item(url, sample, rng)
                if item is not None:
                    yield item

    def _item(self, url: str, sample: dict[str, bytes], rng: random.Random) -> dict | None:
        extension = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
        if extension is None or "json" not in sample:
            raise ValueError(f"a sample in shard {url} lacks an image or its .json (members {sorted(sample)})")
        meta = json.loads(sample["json"])
        captions = [c for c in meta["captions"] if c["sample_id"] not in self.exclude]
        if not captions:
            return None  # every caption of this image is quarantined
        caption = rng.choice(captions)["caption"]
        item = {"pixels": self.transform(Image.open(io.BytesIO(sample[extension]))),
                "token_ids": self.tokenizer([caption])[0], "image_group": stable_code(meta["image_id"]),
                "caption": caption}
        if meta.get("person_id") is not None:
            item["person_id"] = stable_code(meta["person_id"])
        return item
