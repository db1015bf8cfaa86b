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
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from PIL import Image
from pydantic import BaseModel, Field

from components.data.manifest import OPTIONAL_COLUMNS, ManifestError, read_manifest, resolve_image
from components.data.transforms import load_image
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


def _image_bytes(path: Path, resize: int | None) -> tuple[bytes, str]:
    if resize is None:
        return path.read_bytes(), path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
    image = load_image(path)
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


def write_shards(dataset_dir: Path, out_dir: Path, samples_per_shard: int = 1000,
                 resize: int | None = None) -> list[Path]:
    """Shard every split of a dataset; `resize` shrinks images so their short side is at most that."""
    manifest = read_manifest(dataset_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = [c for c in OPTIONAL_COLUMNS if c in manifest.columns and c != "license"]
    written = []
    for split, rows in manifest.groupby("split", sort=True):
        images = list(rows.groupby("image_id", sort=True))
        for n, start in enumerate(range(0, len(images), samples_per_shard)):
            path = out_dir / f"{split}-{n:06d}.tar"
            with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
                keys: set[str] = set()
                for image_id, group in images[start:start + samples_per_shard]:
                    key = shard_key(image_id)
                    if key in keys:
                        raise ManifestError(f"image ids of split {split} collide as WebDataset key {key!r}; "
                                            "make the image ids distinct")
                    keys.add(key)
                    data, ext = _image_bytes(resolve_image(dataset_dir, group["image"].iloc[0]), resize)
                    meta = {"image_id": image_id, "split": split,
                            "captions": [{"sample_id": s, "caption": c}
                                         for s, c in zip(group["sample_id"], group["caption"], strict=True)],
                            **{c: _plain(group[c].iloc[0]) for c in extra}}
                    _add(tar, f"{key}.{ext}", data)
                    _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
                    _add(tar, f"{key}.txt", str(group["caption"].iloc[0]).encode())
            written.append(path)
    return written


def _plain(value: object) -> object:
    return None if pd.isna(value) else value
