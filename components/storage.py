"""Copying files to where a run's outputs go: a local folder or an object store (fsspec URLs, s3://); and the
one S3 filesystem a process reads images and writes parts through."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def s3_filesystem():
    """One S3 filesystem per process (s3fs: boto's credential chain, `AWS_ENDPOINT_URL_S3`): a worker reads its
    many images and writes its parts through one connection pool."""
    import fsspec

    return fsspec.filesystem("s3")


def upload(local: Path, uri: str) -> None:
    """Copy a file, or a directory's contents, to `uri`."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if local.is_dir():
        fs.put(str(local).rstrip("/") + "/", path.rstrip("/") + "/", recursive=True)
    else:
        fs.put_file(str(local), path)
