"""WebDataset tar shards: written from a dataset directory for streaming training at scale.

One sample per image: `<key>.jpg|png` (original bytes, or re-encoded when resized), `<key>.json`
(image_id, split, and every caption with its sample_id) and `<key>.txt` (the first caption, for tools
that expect one). Shards are named `<split>-<n>.tar` and written deterministically (sorted, mtime 0), so
the same dataset gives the same bytes and DVC versions them once.

Reading a shard is bounded before work (`ShardLimits`): compressed tars are refused (their decompressed
size is unknown until read), and every member's declared size and the member count are checked before a
byte of it is read. Member names follow the containment rule, and two members of one sample with the
same extension are an error, never a silent overwrite.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar

import pandas as pd
from PIL import Image
from pydantic import BaseModel, Field

from components.data.location import ImageRoot
from components.data.manifest import OPTIONAL_COLUMNS, ManifestError, read_manifest
from components.data.transforms import load_image
from components.partitions.plan import IN_PROCESS, Runner, Work, digest
from core.containment import UnsafePath, relative_path

_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
TEXT_EXTENSIONS = {"json", "txt", "cls", "cap"}


class ShardLimits(BaseModel):
    """What one shard may hold; larger shards are refused before their members are read."""

    max_member_bytes: int = Field(64 * 2**20, ge=1, description="an image (or any member) at most this large")
    max_text_bytes: int = Field(2**20, ge=1, description="a .json / .txt member at most this large")
    max_members: int = Field(1_000_000, ge=1, description="members in one shard")


def shard_key(image_id: str) -> str:
    """WebDataset splits a member name at its first dot, so keys carry none. Where characters had to be
    replaced, a digest of the image id keeps the key unique (`a/b` and `a_b` stay two samples)."""
    key = re.sub(r"[^A-Za-z0-9_-]", "_", image_id)
    return key if key == image_id else f"{key[:100]}_{hashlib.sha256(image_id.encode()).hexdigest()[:12]}"


def tar_members(stream: BinaryIO, shard: str, limits: ShardLimits) -> Iterator[tuple[str, str, bytes]]:
    """(key, extension, bytes) of every file member, in file order, each bounded before it is read; the
    key is the member's path up to the first dot of its name, checked by the containment rule."""
    magic = stream.read(6)
    stream.seek(0)
    compression = next((kind for prefix, kind in _COMPRESSED.items() if magic.startswith(prefix)), None)
    if compression:
        raise ManifestError(f"shard {shard} is {compression}-compressed: its decompressed size cannot be bounded "
                            "before reading; write plain .tar shards (alignops data shard)")
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise ManifestError(f"shard {shard} has more than {limits.max_members} members; split it")
                if not member.isfile():
                    continue
                yield _member(tar, member, shard, limits)
    except tarfile.TarError as error:
        raise ManifestError(f"shard {shard} is not a readable tar ({error})") from None


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, shard: str,
            limits: ShardLimits) -> tuple[str, str, bytes]:
    try:
        name = relative_path(member.name, f"member of shard {shard}")
    except UnsafePath as error:
        raise ManifestError(str(error)) from None
    stem, _, extension = name.name.partition(".")
    extension = extension.lower()
    limit = limits.max_text_bytes if extension in TEXT_EXTENSIONS else limits.max_member_bytes
    if member.size > limit:
        raise ManifestError(f"shard {shard}: member {member.name!r} declares {member.size} bytes, over the limit "
                            f"of {limit}")
    return str(name.parent / stem) if str(name.parent) != "." else stem, extension, tar.extractfile(member).read()


def _image_bytes(data: bytes, suffix: str, resize: int | None) -> tuple[bytes, str]:
    if resize is None:
        return data, suffix.lower().lstrip(".").replace("jpeg", "jpg")
    image = load_image(Image.open(io.BytesIO(data)))
    size = _short_side(image.size, resize)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), "jpg"


def _short_side(size: tuple[int, int], target: int) -> tuple[int, int]:
    """The size with its short side shrunk to `target` (never enlarged)."""
    scale = target / min(size)
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale))) if scale < 1 else size


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(dataset_dir: Path, out_dir: Path, samples_per_shard: int = 1000, resize: int | None = None, *,
                 runner: Runner = IN_PROCESS) -> list[Path]:
    """Shard every split of a dataset; `resize` shrinks images so their short side is at most that. Each shard
    is written by `runner` (on a cluster, one shard a partition: its partition size must be `samples_per_shard`)
    into `out_dir`, which every worker must reach."""
    manifest = read_manifest(dataset_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = [c for c in OPTIONAL_COLUMNS if c in manifest.columns and c != "license"]
    written = []
    for split, rows in manifest.groupby("split", sort=True):
        samples = [json.dumps({"image_id": image_id, "image": str(group["image"].iloc[0]), "split": split,
                               "shard": position // samples_per_shard,
                               "captions": [{"sample_id": s, "caption": c}
                                            for s, c in zip(group["sample_id"], group["caption"], strict=True)],
                               **{c: _plain(group[c].iloc[0]) for c in extra}}, ensure_ascii=False, default=str)
                   for position, (image_id, group) in enumerate(rows.groupby("image_id", sort=True))]
        work = ShardWork(root=ImageRoot(root=str(dataset_dir)), out=str(out_dir), resize=resize)
        written += [out_dir / name for name in runner.map(work, samples)]
    return written


class ShardWork(Work):
    """Samples (one JSON record per image, naming the shard it belongs in) written as WebDataset tar shards into
    `out`, each written whole to a temporary name and renamed; the part is the shards' names."""

    kind: ClassVar[str] = "shards"
    suffix: ClassVar[str] = "json"
    root: ImageRoot
    out: str
    resize: int | None = None

    def identity(self) -> str:
        return digest(self.kind, self.root, self.out, self.resize)

    def run(self, items: list[str]) -> list[str]:
        samples = [json.loads(item) for item in items]
        names = []
        for shard in sorted({sample["shard"] for sample in samples}):
            chosen = [sample for sample in samples if sample["shard"] == shard]
            names.append(self._write(f"{chosen[0]['split']}-{shard:06d}.tar", chosen))
        return names

    def _write(self, name: str, samples: list[dict]) -> str:
        target = Path(self.out) / name
        staging = target.with_name(f".partial-{name}")
        keys: set[str] = set()
        with tarfile.open(staging, "w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in samples:
                key = shard_key(sample["image_id"])
                if key in keys:
                    raise ManifestError(f"image ids of split {sample['split']} collide as WebDataset key {key!r}; "
                                        "make the image ids distinct")
                keys.add(key)
                data, ext = _image_bytes(self.root.read(sample["image"]), Path(sample["image"]).suffix, self.resize)
                meta = {k: v for k, v in sample.items() if k not in ("image", "shard")}
                _add(tar, f"{key}.{ext}", data)
                _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
                _add(tar, f"{key}.txt", str(sample["captions"][0]["caption"]).encode())
        os.replace(staging, target)
        return name

    def save(self, part: list[str], path: Path) -> None:
        path.write_text(json.dumps(part))

    def load(self, path: Path) -> list[str]:
        return json.loads(path.read_text())

    def combine(self, parts: list[list[str]]) -> list[str]:
        return [name for part in parts for name in part]


def _plain(value: object) -> object:
    return None if pd.isna(value) else value
