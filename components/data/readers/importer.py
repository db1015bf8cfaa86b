"""Materialise a reader's rows as a dataset directory: images copied (or hard-linked) into `images/`,
DICOM converted to PNG, and `manifest.parquet` written with paths relative to it.

Every image path is checked against the folder the annotations are relative to before anything is
copied: a path that is absolute, climbs out with `..` or leads out through a symlink is never followed.
Its row is quarantined with the reason (`import_quarantine.csv` in the dataset directory), so rows in =
kept + quarantined.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.containment import UnsafePath, inside
from components.data.dicom import dicom_to_png
from components.data.manifest import SPLITS, ManifestError, write_manifest

QUARANTINE_FILE = "import_quarantine.csv"


@dataclass
class SourceRows:
    """A reader's rows (`image` holds source paths) and the folder every image must lie inside."""

    frame: pd.DataFrame
    image_root: Path


@dataclass
class ImportResult:
    manifest: pd.DataFrame  # the kept rows, as written
    quarantined: pd.DataFrame  # sample_id, image (as the source named it), reason

    @property
    def rows_in(self) -> int:
        return len(self.manifest) + len(self.quarantined)


def assign_splits(frame: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1) -> pd.Series:
    """A deterministic split per image (hash of image_id), so all captions of an image share one."""

    def split_of(image_id: str) -> str:
        u = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"

    return frame["image_id"].astype(str).map(split_of)


def import_dataset(rows: SourceRows, dest: Path) -> ImportResult:
    dest = Path(dest)
    frame = rows.frame.copy()
    if "split" not in frame or frame["split"].isna().all():
        frame["split"] = assign_splits(frame)
    frame["split"] = frame["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ManifestError(f"unknown split names {unknown}; use {SPLITS}")
    if "sample_id" not in frame:
        frame["sample_id"] = [f"s{i:07d}" for i in range(len(frame))]
    targets, refused = {}, {}
    for source in frame["image"].astype(str).unique():
        try:
            path = inside(rows.image_root, Path(source), "image path")
        except UnsafePath as error:
            refused[source] = str(error)
            continue
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]  # tells apart same-named files from two folders
        suffix = ".png" if path.suffix.lower() == ".dcm" else path.suffix.lower()
        target = f"images/{path.stem[:100]}-{digest}{suffix}"
        problem = _materialise(path, dest / target)
        if problem:
            refused[source] = problem
        else:
            targets[source] = target
    images = frame["image"].astype(str)
    is_refused = images.isin(refused)
    quarantined = pd.DataFrame({"sample_id": frame.loc[is_refused, "sample_id"].astype(str),
                                "image": images[is_refused], "reason": images[is_refused].map(refused)})
    frame = frame[~is_refused].copy()
    frame["image"] = images[~is_refused].map(targets)
    write_manifest(frame, dest)
    (dest / QUARANTINE_FILE).unlink(missing_ok=True)
    if len(quarantined):
        quarantined.to_csv(dest / QUARANTINE_FILE, index=False)
    return ImportResult(manifest=frame, quarantined=quarantined.reset_index(drop=True))


def _materialise(source: Path, target: Path) -> str | None:
    """Copy (or link, or convert) one image; the reason it was refused, if it was. Missing sources are left
    for validation to report by name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists() or target.exists():
        return None
    if source.suffix.lower() == ".dcm":
        try:
            dicom_to_png(source, target)
        except Exception as error:  # noqa: BLE001 - any broken DICOM becomes a quarantined row, with its reason
            target.unlink(missing_ok=True)
            return f"DICOM {source.name} does not convert: {error}"
        return None
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return None
