"""Copying files to where a run's outputs go: a local folder or an object store (fsspec URLs, s3://)."""

from __future__ import annotations

from pathlib import Path


def upload(local: Path, uri: str) -> None:
    """Copy a file, or a directory's contents, to `uri`."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if local.is_dir():
        fs.put(str(local).rstrip("/") + "/", path.rstrip("/") + "/", recursive=True)
    else:
        fs.put_file(str(local), path)
