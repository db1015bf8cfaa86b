"""The dataset contract: a directory with `manifest.parquet` and the image files it points to."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

MANIFEST_FILE = "manifest.parquet"
REQUIRED_COLUMNS = ("sample_id", "image", "caption", "image_id", "split")
OPTIONAL_COLUMNS = ("label", "person_id", "source", "license")
SPLITS = ("train", "val", "test")
# Every read of a manifest is bounded from its file's metadata first: a few hundred KB of dictionary-encoded
# Parquet can hold 10^7 rows, or one long caption repeated on every row, which take gigabytes once read.
# Larger datasets are split, or the limits raised where a command takes them (`ValidationConfig`,
# `data curate --max-rows`).
MAX_MANIFEST_ROWS = 2_000_000
MAX_MANIFEST_BYTES = 4 << 30  # the rows once decoded: 2,000,000 rows of 1,000-character captions and their paths fit
READ_BATCH_ROWS = 65_536


class ManifestError(ValueError):
    """A manifest that breaks the contract; the message says which column or rows."""


def check_columns(frame: pd.DataFrame) -> pd.DataFrame:
    _require_columns(list(frame.columns))
    return frame


def _require_columns(columns: list[str], where: str = "manifest") -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"{where} lacks required columns {missing}; it has {columns[:20]}")


def manifest_rows(dataset_dir: Path, max_rows: int | None = None, max_bytes: int | None = None) -> int:
    """Check a manifest from its file's metadata alone, before a row is read: it exists, has the contract's
    columns, at most `max_rows` rows and at most `max_bytes` of pages once decompressed; return its row count.
    Everything about the rows themselves is validation's to find and report."""
    path = Path(dataset_dir) / MANIFEST_FILE
    return _checked(path, _parquet(path).metadata, max_rows, max_bytes)


def _checked(path: Path, metadata, max_rows: int | None, max_bytes: int | None) -> int:
    _require_columns(list(metadata.schema.names), str(path))
    if max_rows is not None and metadata.num_rows > max_rows:
        raise ManifestError(f"{path} has {metadata.num_rows:,} rows, over the limit of {max_rows:,}: split it into "
                            "smaller datasets, or raise the limit")
    stored = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if max_bytes is not None and stored > max_bytes:
        raise ManifestError(f"{path} holds {stored:,} bytes once decompressed, over the limit of {max_bytes:,}: "
                            "split it into smaller datasets, or raise the limit")
    return metadata.num_rows


def _parquet(path: Path):
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ManifestError(f"no {MANIFEST_FILE} in {path.parent}: is this a dataset directory?")
    try:
        plain = pq.ParquetFile(path)
        text_columns = [column.name for column in plain.schema if column.physical_type == "BYTE_ARRAY"]
        # Text read as dictionaries stays as small as it is stored until its decoded size has been counted; the
        # footer read once serves both handles.
        return pq.ParquetFile(path, read_dictionary=text_columns, metadata=plain.metadata)
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} is not a readable Parquet file ({error}): write it again, or import the "
                            "data with `alignops data import`") from None


def _read_bounded(dataset_dir: Path, max_rows: int, max_bytes: int) -> pd.DataFrame:
    """The manifest read `READ_BATCH_ROWS` at a time, each batch's decoded size counted before it is decoded:
    memory stays within `max_bytes` and one batch, whatever the file's encoding promises."""
    import pyarrow as pa

    path = Path(dataset_dir) / MANIFEST_FILE
    file = _parquet(path)
    _checked(path, file.metadata, max_rows, max_bytes)
    stored = file.schema_arrow  # with the pandas dtypes recorded with it
    plain = pa.schema([field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field
                       for field in stored], metadata=stored.metadata)
    batches, decoded = [], 0
    for batch in file.iter_batches(batch_size=READ_BATCH_ROWS):
        decoded += sum(_decoded_bytes(column) for column in batch.columns)
        if decoded > max_bytes:
            raise ManifestError(f"{path} holds over {max_bytes:,} bytes of rows once decoded (a value repeated "
                                "by its encoding): split it into smaller datasets, or raise the limit")
        batches.append(pa.RecordBatch.from_arrays([_plain(column) for column in batch.columns], schema=plain))
    return pa.Table.from_batches(batches, schema=plain).to_pandas()


def _decoded_bytes(column) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        return column.nbytes
    lengths = pc.binary_length(column.dictionary).take(column.indices)
    return int(pc.sum(lengths).as_py() or 0) + 8 * len(column)  # the text and its offsets


def _plain(column):
    import pyarrow as pa

    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


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
                  max_rows: int = MAX_MANIFEST_ROWS, max_bytes: int = MAX_MANIFEST_BYTES) -> pd.DataFrame:
    """The manifest without the `exclude` rows (those validation quarantined), row checks on what is left;
    `strict=False` checks only that the columns exist, leaving row checks to validation. Its row count and
    stored size are checked against the limits from the file's metadata before a row is read, and its decoded
    size batch by batch while it is read."""
    frame = _read_bounded(Path(dataset_dir), max_rows, max_bytes)
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
