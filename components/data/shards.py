"""WebDataset tar shards: written from a dataset directory for streaming training at scale.

One sample per image: `<key>.jpg|png` (original bytes, or re-encoded when resized), `<key>.json`
(image_id, split, and every caption with its sample_id) and `<key>.txt` (the first caption, for tools
that expect one). Shards are named `<split>-<n>.tar` and written deterministically (sorted, mtime 0), so
the same dataset gives the same bytes and DVC versions them once.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pandas as pd
from PIL import Image

from components.data.manifest import OPTIONAL_COLUMNS, read_manifest, resolve_image
from components.data.transforms import load_image


def shard_key(image_id: str) -> str:
    """WebDataset splits a member name at its first dot, so keys carry none."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", image_id)


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
                for image_id, group in images[start:start + samples_per_shard]:
                    key = shard_key(image_id)
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
