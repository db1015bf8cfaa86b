"""WebDataset tar shards: samples grouped by key (`<key>.<ext>`); captions from `.json` (`captions`
list or `caption`) or `.txt`. Images are unpacked into a staging folder for import."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path, PurePosixPath

import pandas as pd

from components.data.manifest import ManifestError

IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"}


def _shards(source: Path) -> list[Path]:
    shards = sorted(source.glob("*.tar")) if source.is_dir() else [source]
    if not shards or not all(s.is_file() for s in shards):
        raise ManifestError(f"no .tar shards at {source}")
    return shards


def _samples(shard: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(shard) as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = PurePosixPath(member.name)
            key, _, ext = name.name.partition(".")
            samples.setdefault(str(name.parent / key), {})[ext.lower()] = tar.extractfile(member).read()
    return samples


def read_webdataset(source: Path, staging: Path, split: str | None = None) -> pd.DataFrame:
    """`source` is one shard or a folder of them; `split` applies where a sample's JSON names none."""
    rows = []
    for shard in _shards(Path(source)):
        for key, parts in _samples(shard).items():
            ext = next((e for e in parts if e in IMAGE_EXTENSIONS), None)
            meta = json.loads(parts["json"]) if "json" in parts else {}
            image_id = str(meta.get("image_id", f"{shard.stem}/{key}"))
            image = staging / shard.stem / f"{key.replace('/', '_')}.{ext or 'missing'}"
            if ext:  # a sample without an image keeps its row, and validation reports the missing file
                image.parent.mkdir(parents=True, exist_ok=True)
                image.write_bytes(parts[ext])
            captions = meta.get("captions") or [{"caption": meta.get("caption", parts.get("txt", b"").decode(
                "utf-8", errors="replace") if "txt" in parts else None)}]
            for k, entry in enumerate(captions):
                rows.append({"sample_id": entry.get("sample_id", f"{image_id}-{k}"), "image": str(image),
                             "caption": entry.get("caption"), "image_id": image_id,
                             "split": meta.get("split", split), "source": meta.get("source", "webdataset"),
                             **{c: meta[c] for c in ("label", "person_id", "license") if meta.get(c) is not None}})
    return pd.DataFrame(rows)
