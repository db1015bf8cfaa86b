"""Readers that turn the formats users have into the manifest of the dataset contract.

A reader returns a frame whose `image` column holds source paths; `import_dataset` then copies the
images into the dataset directory and writes `manifest.parquet` with paths relative to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel

from components.data.manifest import SPLITS, ManifestError, write_manifest


class ColumnMapping(BaseModel):
    """Which source column holds each manifest field; absent optional fields are derived."""

    image: str = "image"
    caption: str = "caption"
    image_id: str | None = None
    split: str | None = None
    sample_id: str | None = None
    label: str | None = None


def read_table(path: Path, columns: ColumnMapping | None = None, image_root: Path | None = None,
               fmt: Literal["csv", "jsonl"] | None = None) -> pd.DataFrame:
    """CSV or JSON Lines with one row per (image, caption) pair; image paths relative to `image_root`."""
    path = Path(path)
    fmt = fmt or ("jsonl" if path.suffix in {".jsonl", ".ndjson"} else "csv")
    # utf-8-sig drops a BOM; keep_default_na=False keeps an empty caption as "" for validation to report.
    raw = (pd.read_json(path, lines=True, dtype=False) if fmt == "jsonl"
           else pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False))
    wanted = {field: source for field, source in (columns or ColumnMapping()).model_dump().items() if source}
    missing = [source for source in wanted.values() if source not in raw.columns]
    if missing:
        raise ManifestError(f"{path.name}: columns {missing} not found; it has {list(raw.columns)}. "
                            "Map them with --column FIELD=SOURCE.")
    frame = pd.DataFrame({field: raw[source] for field, source in wanted.items()})
    root = Path(image_root) if image_root else path.parent
    frame["image"] = [str(root / p) for p in frame["image"].astype(str)]
    if "image_id" not in frame:
        frame["image_id"] = frame["image"]
    return frame


def read_coco_captions(annotations: Path, image_root: Path) -> pd.DataFrame:
    """COCO captions JSON (`images`, `annotations`, `licenses`): one row per caption."""
    data = json.loads(Path(annotations).read_text(encoding="utf-8"))
    licenses = {lic["id"]: lic.get("name", str(lic["id"])) for lic in data.get("licenses", [])}
    images = {img["id"]: img for img in data["images"]}
    rows = []
    for ann in data["annotations"]:
        img = images.get(ann["image_id"])
        if img is None:
            raise ManifestError(f"{annotations}: annotation {ann.get('id')} names unknown image {ann['image_id']}")
        rows.append({"sample_id": f"coco-{ann['id']}", "image": str(Path(image_root) / img["file_name"]),
                     "caption": ann["caption"], "image_id": f"coco-{img['id']}", "source": "coco",
                     "license": licenses.get(img.get("license"), "unknown")})
    return pd.DataFrame(rows)


def assign_splits(frame: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1) -> pd.Series:
    """A deterministic split per image (hash of image_id), so all captions of an image share one."""

    def split_of(image_id: str) -> str:
        u = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"

    return frame["image_id"].astype(str).map(split_of)


def import_dataset(frame: pd.DataFrame, dest: Path) -> pd.DataFrame:
    """Copy (or hard-link) each source image into `dest/images/` and write the manifest there."""
    dest = Path(dest)
    frame = frame.copy()
    if "split" not in frame:
        frame["split"] = assign_splits(frame)
    frame["split"] = frame["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ManifestError(f"unknown split names {unknown}; use {SPLITS}")
    if "sample_id" not in frame:
        frame["sample_id"] = [f"s{i:07d}" for i in range(len(frame))]
    targets: dict[str, str] = {}
    for source in frame["image"].unique():
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]  # tells apart same-named files from two folders
        name = f"images/{Path(source).stem}-{digest}{Path(source).suffix.lower()}"
        _link_or_copy(Path(source), dest / name)
        targets[source] = name
    frame["image"] = frame["image"].map(targets)
    write_manifest(frame, dest)
    return frame


def _link_or_copy(source: Path, target: Path) -> None:
    """Missing sources are left for validation to report by name, not raised here one at a time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists() or target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
