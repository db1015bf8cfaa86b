"""A dataset as it travels through a run: where its bytes are, which version they are, and their hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePath

from pydantic import BaseModel, Field

from core.digest import sha256_file


class DatasetRef(BaseModel):
    """Resolved once, where a run starts (the CLI, a schedule, the UI form), then passed whole.

    `hash` is DVC's hash of the directory when it is a tracked version; an unversioned directory has
    none, and nothing is cached on it (its bytes could change between two runs)."""

    path: str = Field("", description="the dataset directory (manifest.parquet + images); leave it empty to "
                                      "name a version by `ref` alone (checked out where the flow runs)")
    ref: str = Field("", description="its version, `path@rev` in the DVC workspace; the path when unversioned")
    # A form or a schedule can send any string: the hash names cache entries and folders, so it is checked.
    hash: str = Field("", pattern=r"^([0-9a-f]{32}\.dir)?$",
                      description="DVC hash of the directory (`<md5>.dir`); empty when unversioned")
    images: str = Field("", pattern=r"^(s3://[A-Za-z0-9.-]{3,63}(/[^\x00-\x1f]*)?)?$",
                        description="where its image files are read from when not beside the manifest in `path`: "
                                    "the S3 prefix of a dataset on S3 (`path` then holds its manifest alone)")

    def model_post_init(self, _: object) -> None:
        if not self.path and "@" not in self.ref:
            raise ValueError("a dataset reference needs a directory (`path`) or a version (`ref`: PATH@REV, as "
                             "`alignops data add` prints)")
        if not self.ref:
            self.ref = self.path

    @property
    def resolved(self) -> bool:
        """Its bytes are at `path` on this machine (a reference by version alone is checked out first)."""
        return bool(self.path)

    @property
    def remote(self) -> bool:
        """Its images stay where the dataset lives (S3) and are read from there."""
        return bool(self.images)

    @property
    def versioned(self) -> bool:
        return bool(self.hash)

    @property
    def key(self) -> str:
        """One path segment naming this dataset: its DVC md5, else a digest of its reference (which may
        hold any characters)."""
        return self.hash.removesuffix(".dir") or "ref-" + hashlib.sha256(self.ref.encode()).hexdigest()[:16]

    def content_key(self) -> str:
        """What identifies its bytes: the DVC hash of a version; for a directory that is no version, the
        digest of its manifest (a changed manifest is another dataset)."""
        from components.data.manifest import MANIFEST_FILE  # pandas: not for the CLI's argument checks

        return self.hash if self.versioned else "manifest-" + sha256_file(Path(self.path) / MANIFEST_FILE)

    @property
    def label(self) -> str:
        """A short name for the data, for an eval set's name: the folder's name in the characters metric names
        allow."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", PurePath(self.ref.partition("@")[0] or self.path).name)
        name = name.strip("-._")[:60]
        return name if name else "data"

    @property
    def recorded(self) -> str:
        """What a record that leaves this machine keeps (a registry lineage, an event, a bento label): the
        version's reference, or for a directory that is no version its name alone, never a local path."""
        return f"{self.label} (unversioned)" if self.ref == self.path else self.ref
