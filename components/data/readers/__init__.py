"""Readers that turn the formats users have into the manifest of the dataset contract.

Each returns a frame whose `image` column holds source paths; `read_source(FORMAT, SRC, …)` dispatches by
format name (the CLI's FORMAT) and pairs the frame with the folder its images must lie inside;
`import_dataset` then materialises those rows as a dataset directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from components.data.manifest import ManifestError
from components.data.readers.coco import read_coco_captions
from components.data.readers.importer import ImportResult, MissingImages, SourceRows, assign_splits, import_dataset
from components.data.readers.karpathy import read_karpathy
from components.data.readers.mimic import read_mimic
from components.data.readers.pedes import read_pedes
from components.data.readers.tables import TABLE_FORMATS, ColumnMapping, read_table
from components.data.readers.webdataset import read_webdataset

FORMATS = (*TABLE_FORMATS, "coco", "karpathy", "cuhk-pedes", "icfg-pedes", "rstpreid", "mimic-cxr", "webdataset")


def read_source(fmt: str, source: Path, *, images: Path | None = None, columns: ColumnMapping | None = None,
                staging: Path | None = None, report_sections: tuple[str, ...] = ("findings", "impression"),
                ) -> SourceRows:
    """`images`: the folder image paths are relative to (default: beside the source), and which no image
    may leave. `staging`: where WebDataset images are unpacked before import."""
    source = Path(source)
    if not source.exists():
        raise ManifestError(f"{source} does not exist")
    try:
        if fmt == "webdataset":
            if staging is None:
                raise ManifestError("reading WebDataset shards needs a staging folder for their images")
            return SourceRows(read_webdataset(source, staging), Path(staging))
        root = Path(images) if images else (source if source.is_dir() else source.parent)
        return SourceRows(_read(fmt, source, root, columns, report_sections), root)
    except (KeyError, TypeError, AttributeError) as error:  # a file of another shape than the format's
        raise ManifestError(f"{source} does not look like {fmt} annotations (missing or malformed field "
                            f"{error}); check the FORMAT argument") from None


def _read(fmt: str, source: Path, root: Path, columns: ColumnMapping | None,
          report_sections: tuple[str, ...]) -> pd.DataFrame:
    if fmt in TABLE_FORMATS:
        return read_table(source, columns, root, fmt)
    if fmt == "coco":
        return read_coco_captions(source, root)
    if fmt == "karpathy":
        return read_karpathy(source, root)
    if fmt in ("cuhk-pedes", "icfg-pedes", "rstpreid"):
        return read_pedes(source, root, fmt)
    if fmt == "mimic-cxr":
        return read_mimic(source, report_sections)
    raise ManifestError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def import_source(fmt: str, source: Path, dest: Path, *, images: Path | None = None,
                  columns: ColumnMapping | None = None, require_images: bool = False,
                  report_sections: tuple[str, ...] = ("findings", "impression")) -> ImportResult:
    """`read_source` then `import_dataset` into `dest`; WebDataset images are unpacked in a staging folder
    inside `dest` that is removed afterwards, whatever happens."""
    staging = Path(dest) / ".staging"
    try:
        return import_dataset(read_source(fmt, source, images=images, columns=columns, staging=staging,
                                          report_sections=report_sections), dest,
                              require_images=require_images)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["FORMATS", "ColumnMapping", "ImportResult", "MissingImages", "SourceRows", "assign_splits", "import_dataset",
           "import_source",
           "read_coco_captions", "read_karpathy", "read_mimic", "read_pedes", "read_source", "read_table",
           "read_webdataset"]
