"""WebDataset tar shards: samples grouped by key (`<key>.<ext>`); captions from `.json` (`captions`
list or `caption`) or `.txt`. Images are unpacked into a staging folder for import, each under its own
key's path, so keys `a/b` and `a_b` stay two samples. Shards are read within `ShardLimits`; a member
name that leaves its folder, or two members with the same key and extension, are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from components.data.manifest import ManifestError
from components.data.shards import ShardLimits, tar_members
from core.containment import contained

IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"}


def _shards(source: Path) -> list[Path]:
    shards = sorted(source.glob("*.tar")) if source.is_dir() else [source]
    if not shards or not all(s.is_file() for s in shards):
        raise ManifestError(f"no .tar shards at {source}")
    return shards


def _samples(shard: Path, staging: Path, limits: ShardLimits) -> dict[str, dict[str, bytes | Path]]:
    """key -> extension -> text bytes, or the staged file of an image (written as it is read)."""
    samples: dict[str, dict[str, bytes | Path]] = {}
    with open(shard, "rb") as stream:
        for key, ext, data in tar_members(stream, shard.name, limits):
            parts = samples.setdefault(key, {})
            if ext in parts:
                raise ManifestError(f"shard {shard.name}: key {key!r} has two .{ext} members; keys must be unique")
            if ext in IMAGE_EXTENSIONS:
                path = contained(staging, f"{shard.stem}/{key}.{ext}", f"image of shard {shard.name}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                parts[ext] = path
            else:
                parts[ext] = data
    return samples


def read_webdataset(source: Path, staging: Path, split: str | None = None,
                    limits: ShardLimits | None = None) -> pd.DataFrame:
    """`source` is one shard or a folder of them; `split` applies where a sample's JSON names none."""
    rows = []
    for shard in _shards(Path(source)):
        for key, parts in _samples(shard, Path(staging), limits or ShardLimits()).items():
            ext = next((e for e in parts if e in IMAGE_EXTENSIONS), None)
            try:
                meta = json.loads(parts["json"]) if "json" in parts else {}
            except ValueError:
                raise ManifestError(f"shard {shard.name}: {key}.json is not valid JSON") from None
            image_id = str(meta.get("image_id", f"{shard.stem}/{key}"))
            # A sample without an image keeps its row, and validation reports the missing file.
            image = parts[ext] if ext else Path(staging) / shard.stem / f"{key}.missing"
            captions = meta.get("captions") or [{"caption": meta.get("caption", parts["txt"].decode(
                "utf-8", errors="replace") if "txt" in parts else None)}]
            for k, entry in enumerate(captions):
                rows.append({"sample_id": entry.get("sample_id", f"{image_id}-{k}"), "image": str(image),
                             "caption": entry.get("caption"), "image_id": image_id,
                             "split": meta.get("split", split), "source": meta.get("source", "webdataset"),
                             **{c: meta[c] for c in ("label", "person_id", "license") if meta.get(c) is not None}})
    return pd.DataFrame(rows)
