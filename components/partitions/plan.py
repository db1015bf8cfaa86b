"""The seam for data work that may leave this machine: a list of inputs (image paths, captions) cut into
partitions, a `Work` that turns one partition into one part, and a `Runner` that maps the work over the
partitions and combines the parts.

`InProcess` (the default) runs the whole list as one partition in this process: today's speed, nothing to
start. The flows layer adds runners over a cluster (`flows/steps/cluster.py`: Dask through Prefect); a Ray
runner would be one more class with the same `map`.

Each part is stored under a folder named by the work's identity (what it reads and computes), as
`<index>-<key>.<suffix>`, where the key digests the identity and the partition's inputs: a re-run of the same
work finds the parts already done and skips them, and a part of other inputs is never taken for one of these.
Parts are written to a temporary name and renamed, so a worker killed mid-write leaves no part behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from components.storage import s3_filesystem
from core.digest import canonical_digest

MAX_PARTITIONS = 100_000  # a plan with more is refused: raise the partition size
# Where partitions may run, as `--cluster` names it: here (empty), a Dask LocalCluster of N worker processes, or
# an existing scheduler. Kept here, light to import, so the CLI refuses a bad address before any heavy import.
CLUSTER_ADDRESS = r"^(|local:[1-9][0-9]{0,2}|tcp://[A-Za-z0-9.\[\]:_-]{1,200})$"


class Partition(BaseModel):
    """A slice of the inputs: its position, its items and the key that names its part."""

    index: int
    items: list[str]
    key: str


class Work(BaseModel):
    """One kind of per-partition work. Subclasses are typed, picklable and travel to workers whole."""

    kind: ClassVar[str]
    suffix: ClassVar[str]

    def identity(self) -> str:
        """What the work reads and computes (not how: threads, batch sizes, devices), as a digest: the same
        work on the same inputs finds the same parts."""
        raise NotImplementedError

    def run(self, items: list[str]) -> Any:
        raise NotImplementedError

    def save(self, part: Any, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        raise NotImplementedError

    def combine(self, parts: list[Any]) -> Any:
        raise NotImplementedError


def digest(*what: object) -> str:
    return canonical_digest([w.model_dump(mode="json") if isinstance(w, BaseModel) else w
                             for w in what]).removeprefix("sha256:")


def plan(items: Sequence[str], size: int, identity: str) -> list[Partition]:
    """`items` cut into partitions of `size` (the last one shorter), in order."""
    if len(items) > size * MAX_PARTITIONS:
        raise ValueError(f"{len(items):,} inputs in partitions of {size:,} make over {MAX_PARTITIONS:,} partitions: "
                         "raise the partition size")
    partitions = []
    for index, start in enumerate(range(0, len(items), size)):
        chunk = list(items[start:start + size])
        named = hashlib.sha256(identity.encode())
        for item in chunk:
            named.update(item.encode("utf-8", "surrogatepass") + b"\x00")
        partitions.append(Partition(index=index, items=chunk, key=named.hexdigest()[:24]))
    return partitions


class PartStore:
    """The parts of one work: `<folder>/<index>-<key>.<suffix>`, where the folder is a local path (this machine,
    a shared filesystem) or an `s3://` prefix that every worker can write."""

    def __init__(self, folder: str, work: Work):
        self.folder, self.work = str(folder).rstrip("/"), work
        self.remote = self.folder.startswith("s3://")

    def path(self, partition: Partition) -> str:
        return f"{self.folder}/{partition.index:06d}-{partition.key}.{self.work.suffix}"

    def done(self, partition: Partition) -> bool:
        return s3_filesystem().exists(self.path(partition)) if self.remote else Path(self.path(partition)).is_file()

    def write(self, partition: Partition, part: Any) -> str:
        """Atomically: written whole to a temporary file, then renamed into place (locally) or uploaded in one
        PUT (S3), so a worker killed mid-write leaves no part behind."""
        target = self.path(partition)
        staging = Path(tempfile.gettempdir()) if self.remote else Path(self.folder)
        staging.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=staging, prefix=".partial-", suffix=f".{self.work.suffix}")
        os.close(handle)
        try:
            self.work.save(part, Path(temporary))
            if self.remote:
                s3_filesystem().put_file(temporary, target)
            else:
                os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return target

    def read(self, partition: Partition) -> Any:
        if not self.remote:
            return self.work.load(Path(self.path(partition)))
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / f"part.{self.work.suffix}"
            s3_filesystem().get_file(self.path(partition), str(local))
            return self.work.load(local)

    def clear(self) -> None:
        """The parts, once combined: a run's scratch, not a cache."""
        if self.remote:
            if s3_filesystem().exists(self.folder):
                s3_filesystem().rm(self.folder, recursive=True)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_partition(work: Work, partition: Partition, folder: str) -> str:
    """What a worker runs: the partition's part, computed unless it is already stored; returns where it is."""
    store = PartStore(folder, work)
    if not store.done(partition):
        store.write(partition, work.run(partition.items))
    return store.path(partition)


class Runner(Protocol):
    def map(self, work: Work, items: Sequence[str]) -> Any:
        """`work` over every item, combined in the items' order."""


class InProcess:
    """The whole list as one partition, here, nothing stored."""

    def map(self, work: Work, items: Sequence[str]) -> Any:
        return work.combine([work.run(list(items))])


IN_PROCESS = InProcess()
