"""A model artifact folder named for work that may run in other processes (`ModelDirectory`): each process loads
it once (`loaded_embedder`), not once per partition, and keeps it between the partitions it is given. Light to
import: torch loads with the model, not with the name."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from components.models.embedder import Embedder

_LOADING = threading.Lock()


class ModelDirectory(BaseModel):
    """A model artifact folder that every worker can read (this machine, a shared filesystem)."""

    path: str
    ref: str = ""  # what the registry calls it, for the work's identity (a folder's path says nothing)
    batch_size: int = Field(256, ge=1, le=65_536)
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")  # auto: the worker's GPU where it has one

    def load(self) -> Embedder:
        return loaded_embedder(self.path, self.batch_size, self.device)

    @property
    def named(self) -> str:
        """The model as a work's identity names it: its registry reference, else its folder."""
        return self.ref or self.path


@lru_cache(maxsize=2)
def _cached(path: str, weights: tuple[int, int], batch_size: int, device: str) -> Embedder:
    import torch

    from components.models.embedder import Embedder

    chosen = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    embedder = Embedder.load(Path(path), device=chosen)
    embedder.batch_size = batch_size
    return embedder


def loaded_embedder(path: str, batch_size: int, device: str) -> Embedder:
    """Loaded once per process; a folder whose weights were written again since is loaded again."""
    from components.models.artifact import WEIGHTS_FILE

    stat = (Path(path) / WEIGHTS_FILE).stat()
    with _LOADING:  # two threads of one worker load it once
        return _cached(path, (stat.st_mtime_ns, stat.st_size), batch_size, device)
