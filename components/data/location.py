"""Where a dataset's image files are read from: its directory on this machine, or an S3 prefix (`s3://bucket/
prefix`, through s3fs and boto's credential chain: `AWS_ENDPOINT_URL_S3`, the environment, a profile), so that
whoever reads an image (this process or a cluster worker) reads it from where the dataset lives.

Every image path is held to the containment rule and every file's size to `max_bytes` before a byte of it is
read; a path or file that fails is an `ImageUnreadable` naming the problem, which callers record per image."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from components.storage import s3_filesystem
from core.containment import UnsafePath, relative_path

MAX_IMAGE_BYTES = 256 << 20  # a larger file is refused unread; no photograph or radiograph we take is near it
S3 = "s3://"


class ImageUnreadable(ValueError):
    """An image that cannot be read: the message is the problem as a validation report names it."""


class ImageRoot(BaseModel):
    """A dataset's image folder: a local directory or `s3://bucket/prefix`. Travels to workers whole."""

    root: str = Field(min_length=1)
    max_bytes: int = Field(MAX_IMAGE_BYTES, ge=1)

    @property
    def remote(self) -> bool:
        return self.root.startswith(S3)

    def read(self, image: str) -> bytes:
        """The file's bytes, or ImageUnreadable: a path that leaves the root, a missing, oversized or empty file."""
        try:
            relative = relative_path(image, "image path")
        except UnsafePath:
            raise ImageUnreadable("path leaves the dataset directory") from None
        data = self._read_s3(str(relative)) if self.remote else self._read_local(str(relative))
        if not data:
            raise ImageUnreadable("empty (0-byte) file")
        return data

    def _read_local(self, relative: str) -> bytes:
        root = Path(self.root).resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):  # a symlink that leads out
            raise ImageUnreadable("path leaves the dataset directory")
        if not path.is_file():
            raise ImageUnreadable("missing file")
        self._check_size(path.stat().st_size)
        return path.read_bytes()

    def _read_s3(self, relative: str) -> bytes:
        key = f"{self.root.rstrip('/')}/{relative}"
        try:
            size = s3_filesystem().size(key)
        except FileNotFoundError:
            raise ImageUnreadable("missing file") from None
        self._check_size(size)
        with s3_filesystem().open(key, "rb", block_size=max(size, 1)) as stream:
            return stream.read(size)  # what was measured, even if the object has grown since

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ImageUnreadable(f"file of {size:,} bytes, over the limit of {self.max_bytes:,}")

