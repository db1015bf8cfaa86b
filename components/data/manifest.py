"""The dataset contract: a directory with `manifest.parquet` and the image files it points to."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

MANIFEST_FILE = "manifest.parquet"
REQUIRED_COLUMNS = ("sample_id", "image", "caption", "image_id", "split")
OPTIONAL_COLUMNS = ("label", "person_id", "source", "license")
SPLITS = ("train", "val", "test")
# Every read of a manifest is bounded from its file's metadata first: a few hundred KB of dictionary-encoded
# Parquet can hold 10^7 rows, which take gigabytes once read. Larger datasets are split, or the limit raised
# where a command takes one (`ValidationConfig.max_rows`, `data curate --max-rows`).
MAX_MANIFEST_ROWS = 2_000_000


class ManifestError(ValueError):
    """A manifest that breaks the contract; the message says which column or rows."""


def check_columns(frame: pd.DataFrame) -> pd.DataFrame:
    _require_columns(list(frame.columns))
    return frame


def _require_columns(columns: list[str], where: str = "manifest") -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"{where} lacks required columns {missing}; it has {columns[:20]}")


def manifest_rows(dataset_dir: Path, max_rows: int | None = None) -> int:
    """Check a manifest from its file's metadata alone, before a row is read: it exists, has the contract's
    columns and at most `max_rows` rows; return its row count. Everything about the rows themselves is
    validation's to find and report."""
    import pyarrow.parquet as pq

    path = Path(dataset_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"no {MANIFEST_FILE} in {dataset_dir}: is this a dataset directory?")
    try:
        metadata = pq.ParquetFile(path).metadata
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is not a readable Parquet file ({error}): write it again, or import the "
                            "data with `alignops data import`") from None
    _require_columns(list(metadata.schema.names), str(path))
    if max_rows is not None and metadata.num_rows > max_rows:
        raise ManifestError(f"{path} has {metadata.num_rows:,} rows, over the limit of {max_rows:,}: split it into "
                            "smaller datasets, or raise the limit")
    return metadata.num_rows


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


def read_manifest(dataset_dir: Path, strict: bool = True, exclude: frozenset[str] = frozenset(),
                  max_rows: int = MAX_MANIFEST_ROWS) -> pd.DataFrame:
    """The manifest without the `exclude` rows (those validation quarantined), row checks on what is left;
    `strict=False` checks only that the columns exist, leaving row checks to validation. Its row count is
    checked against `max_rows` from the file's metadata before a row is read."""
    manifest_rows(dataset_dir, max_rows)
    frame = pd.read_parquet(Path(dataset_dir) / MANIFEST_FILE)
    if exclude:
        frame = check_columns(frame)
        frame = frame[~frame["sample_id"].astype(str).isin(exclude)]
    return check_manifest(frame) if strict else check_columns(frame)


def resolve_image(dataset_dir: Path, image: str) -> Path:
    """The image's path, refusing paths that leave the dataset directory."""
    root = Path(dataset_dir).resolve()
    path = (root / image).resolve()
    if not path.is_relative_to(root):
        raise ManifestError(f"image path {image!r} leaves the dataset directory {root}")
    return path
