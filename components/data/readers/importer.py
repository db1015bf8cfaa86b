"""Materialise a reader's frame as a dataset directory: images copied (or hard-linked) into
`images/`, DICOM converted to PNG, and `manifest.parquet` written with paths relative to it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd

from components.data.dicom import dicom_to_png
from components.data.manifest import SPLITS, ManifestError, write_manifest


def assign_splits(frame: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1) -> pd.Series:
    """A deterministic split per image (hash of image_id), so all captions of an image share one."""

    def split_of(image_id: str) -> str:
        u = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"

    return frame["image_id"].astype(str).map(split_of)


def import_dataset(frame: pd.DataFrame, dest: Path) -> pd.DataFrame:
    dest = Path(dest)
    frame = frame.copy()
    if "split" not in frame or frame["split"].isna().all():
        frame["split"] = assign_splits(frame)
    frame["split"] = frame["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ManifestError(f"unknown split names {unknown}; use {SPLITS}")
    if "sample_id" not in frame:
        frame["sample_id"] = [f"s{i:07d}" for i in range(len(frame))]
    targets: dict[str, str] = {}
    for source in frame["image"].unique():
        path = Path(source)
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]  # tells apart same-named files from two folders
        suffix = ".png" if path.suffix.lower() == ".dcm" else path.suffix.lower()
        targets[source] = f"images/{path.stem}-{digest}{suffix}"
        _materialise(path, dest / targets[source])
    frame["image"] = frame["image"].map(targets)
    write_manifest(frame, dest)
    return frame


def _materialise(source: Path, target: Path) -> None:
    """Missing or unreadable sources are left for validation to report by name, not raised one at a time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists() or target.exists():
        return
    if source.suffix.lower() == ".dcm":
        try:
            dicom_to_png(source, target)
        except Exception:  # noqa: BLE001 - a broken DICOM becomes a missing image, reported by validation
            return
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
