"""The dataset contract: a directory with `manifest.parquet` and the image files it points to."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

MANIFEST_FILE = "manifest.parquet"
REQUIRED_COLUMNS = ("sample_id", "image", "caption", "image_id", "split")
OPTIONAL_COLUMNS = ("label", "person_id", "source", "license")
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest that breaks the contract; the message says which column or rows."""


def check_columns(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"manifest lacks required columns {missing}; it has {list(frame.columns)}")
    return frame


def check_manifest(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the columns of the contract and return the frame with contract dtypes and column order."""
    check_columns(frame)
    duplicated = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(duplicated):
        raise ManifestError(f"sample_id must be unique; repeated: {duplicated.head(5).tolist()}")
    bad_splits = sorted(set(frame["split"]) - set(SPLITS))
    if bad_splits:
        raise ManifestError(f"split must be one of {SPLITS}; found {bad_splits}")
    columns = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    out = frame[columns + extra].reset_index(drop=True)
    for column in ("sample_id", "image", "image_id", "split"):
        out[column] = out[column].astype(str)
    return out


def write_manifest(frame: pd.DataFrame, dataset_dir: Path) -> Path:
    dataset_dir.mkdir(parents=True, exist_ok=True)
    path = dataset_dir / MANIFEST_FILE
    check_manifest(frame).to_parquet(path, index=False)
    return path


def read_manifest(dataset_dir: Path, strict: bool = True) -> pd.DataFrame:
    """The manifest; `strict=False` checks only that the columns exist, leaving row checks to validation."""
    path = Path(dataset_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"no {MANIFEST_FILE} in {dataset_dir}: is this a dataset directory?")
    frame = pd.read_parquet(path)
    return check_manifest(frame) if strict else check_columns(frame)


def resolve_image(dataset_dir: Path, image: str) -> Path:
    """The image's path, refusing paths that leave the dataset directory."""
    root = Path(dataset_dir).resolve()
    path = (root / image).resolve()
    if not path.is_relative_to(root):
        raise ManifestError(f"image path {image!r} leaves the dataset directory {root}")
    return path
