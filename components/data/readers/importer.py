"""Materialise a reader's rows as a dataset directory: images copied (or hard-linked) into `images/`,
DICOM converted to PNG, and `manifest.parquet` written with paths relative to it.

Every image path is checked against the folder the annotations are relative to before anything is
copied: a path that is absolute, climbs out with `..` or leads out through a symlink is never followed.
Nor is a path that names no file: an image that is missing is reported (or, with `require_images`, fails
the import before anything is written). Such rows are quarantined with the reason
(`import_quarantine.csv` in the dataset directory), so rows in = kept + quarantined, and what the manifest
keeps is only relative paths and ids: no local absolute path, nothing that depends on where the source sat.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from components.data.dicom import dicom_to_png
from components.data.manifest import SPLITS, ManifestError, write_manifest
from core.containment import UnsafePath, inside

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
    missing_images: list[str] = field(default_factory=list)  # named but absent (rows quarantined), portable ids

    @property
    def rows_in(self) -> int:
        return len(self.manifest) + len(self.quarantined)


SPLIT_KEY = "image_id"  # what a split is drawn from: an id that does not depend on where the data sits


def assign_splits(frame: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.1) -> pd.Series:
    """A deterministic split per image: a hash of its `image_id` (for a table without one, the image's path
    relative to the image folder), so all captions of an image share one and re-importing from another
    folder, or with absolute instead of relative paths, gives every image the same split."""

    def split_of(image_id: str) -> str:
        u = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"

    return frame[SPLIT_KEY].astype(str).map(split_of)


class MissingImages(ManifestError):
    """Rows name images that do not exist, and the import was asked to require them."""


def import_dataset(rows: SourceRows, dest: Path, *, require_images: bool = False) -> ImportResult:
    """Rows whose image is unsafe, missing or unconvertible are quarantined with the reason; with
    `require_images` a missing image fails the import before anything is written."""
    dest, frame = Path(dest), rows.frame.copy()
    located, refused = _locate(frame["image"].astype(str).unique(), rows.image_root)
    missing = {source: portable for source, (path, portable) in located.items() if not path.is_file()}
    # What the quarantine file names: the image's portable id, never a local path (`data add` versions it).
    portable_of = {source: portable for source, (_, portable) in located.items()}
    if missing and require_images:
        raise MissingImages(f"{len(missing)} image(s) named by the annotations do not exist under {rows.image_root}, "
                            f"e.g. {sorted(missing.values())[:3]}: fix the paths or --images, or import without "
                            "--require-images to quarantine those rows")
    for source, portable in missing.items():
        refused[source] = f"missing image: {portable} is not a file under the image folder"
        del located[source]
    images = frame["image"].astype(str)
    if "image_id" not in frame or frame["image_id"].isna().all():
        frame["image_id"] = images.map(lambda source: located[source][1] if source in located else source)
    frame = _with_splits(frame)
    if "sample_id" not in frame:
        frame["sample_id"] = [f"s{i:07d}" for i in range(len(frame))]
    targets = {}
    for source, (path, portable) in located.items():
        digest = hashlib.sha256(portable.encode()).hexdigest()[:8]  # tells apart same-named files of two folders
        suffix = ".png" if path.suffix.lower() == ".dcm" else path.suffix.lower()
        target = f"images/{path.stem[:100]}-{digest}{suffix}"
        problem = _materialise(path, dest / target)
        if problem:
            refused[source] = problem
        else:
            targets[source] = target
    is_refused = images.isin(refused)
    quarantined = pd.DataFrame({"sample_id": frame.loc[is_refused, "sample_id"].astype(str),
                                "image": images[is_refused].map(lambda src: portable_of.get(src, Path(src).name)),
                                "reason": images[is_refused].map(refused)})
    frame = frame[~is_refused].copy()
    frame["image"] = images[~is_refused].map(targets)
    write_manifest(frame, dest)
    (dest / QUARANTINE_FILE).unlink(missing_ok=True)
    if len(quarantined):
        quarantined.to_csv(dest / QUARANTINE_FILE, index=False)
    return ImportResult(manifest=frame, quarantined=quarantined.reset_index(drop=True),
                        missing_images=sorted(missing.values()))


def _locate(sources, image_root: Path) -> tuple[dict[str, tuple[Path, str]], dict[str, str]]:
    """Each source path checked to lie inside the image folder: its path there and its portable id (the
    POSIX path relative to the folder, however the source spelt it), or the reason it was refused."""
    located, refused = {}, {}
    root = Path(image_root).resolve()
    for source in sources:
        try:
            path = inside(image_root, Path(source), "image path")
        except UnsafePath as error:  # said without local paths: the quarantine file is versioned with the data
            refused[source] = _without_local_paths(str(error), source, image_root)
            continue
        located[source] = (path, path.relative_to(root).as_posix())
    return located, refused


def _without_local_paths(reason: str, source: str, image_root: Path) -> str:
    for folder in {str(Path(image_root).resolve()), str(image_root)}:
        reason = reason.replace(folder, "the image folder")
    return reason.replace(source, Path(source).name) if Path(source).is_absolute() else reason


def _with_splits(frame: pd.DataFrame) -> pd.DataFrame:
    if "split" not in frame or frame["split"].isna().all():
        frame["split"] = assign_splits(frame)
    frame["split"] = frame["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ManifestError(f"unknown split names {unknown}; use {SPLITS} (or leave the split column out to have "
                            "one drawn from each image's id)")
    return frame


def _materialise(source: Path, target: Path) -> str | None:
    """Copy (or link, or convert) one existing image; the reason it was refused, if it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
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
