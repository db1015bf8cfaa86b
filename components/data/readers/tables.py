"""Tables with one row per (image, caption) pair: CSV, TSV, JSON Lines, Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from components.data.manifest import ManifestError

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")


class ColumnMapping(BaseModel):
    """Which source column holds each manifest field; absent optional fields are derived."""

    image: str = "image"
    caption: str = "caption"
    image_id: str | None = None
    split: str | None = None
    sample_id: str | None = None
    label: str | None = None
    person_id: str | None = None


def _load(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    # utf-8-sig drops a BOM; invalid bytes become U+FFFD, which validation reports by row (never silently);
    # keep_default_na=False keeps an empty caption as "" for validation to report.
    return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, encoding="utf-8-sig",
                       encoding_errors="replace", keep_default_na=False)


def read_table(path: Path, columns: ColumnMapping | None = None, image_root: Path | None = None,
               fmt: str | None = None) -> pd.DataFrame:
    """Image paths are relative to `image_root` (default: the table's folder)."""
    path = Path(path)
    fmt = fmt or {".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}.get(path.suffix, "csv")
    if fmt not in TABLE_FORMATS:
        raise ManifestError(f"unknown table format {fmt!r}: use one of {TABLE_FORMATS}")
    raw = _load(path, fmt)
    wanted = {field: source for field, source in (columns or ColumnMapping()).model_dump().items() if source}
    missing = [source for source in wanted.values() if source not in raw.columns]
    if missing:
        raise ManifestError(f"{path.name}: columns {missing} not found; it has {list(raw.columns)}. "
                            "Map them with --column FIELD=SOURCE.")
    frame = pd.DataFrame({field: raw[source] for field, source in wanted.items()})
    root = Path(image_root) if image_root else path.parent
    frame["image"] = [str(root / p) for p in frame["image"].astype(str)]
    return frame  # without an image_id column, the importer derives a portable one from each image's path
