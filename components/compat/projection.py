"""A light map from a new model's embedding space into an old one (FCT / XBT), so that the new model's queries
search a gallery the old model embedded, before (or instead of) re-embedding it.

The backbones stay frozen, so both models embed the training data once and the map trains on those
embeddings: first on captions alone (new text -> old text, as XBT does: no images needed, and text is what
teams have most of), then on image-text pairs (new text against old images, new images against old texts).
It is stored beside the new artifact as `compat/<space>.safetensors`, its shape in the file's metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

COMPAT_DIR = "compat"
SPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}:[0-9]{1,9}$")  # the model version that defines it
MAX_HIDDEN = 8192


def space_file(space: str) -> str:
    """`compat/<name>-v<version>.safetensors` for the space `name:version` (a path checked by its pattern)."""
    if not SPACE.match(space):
        raise ValueError(f"an embedding space is named by the model version that defines it (`name:version`), "
                         f"not {space!r}")
    name, version = space.rsplit(":", 1)
    return f"{COMPAT_DIR}/{name}-v{version}.safetensors"


class Projection(nn.Module):
    """Linear (`hidden=0`) or a two-layer MLP; outputs L2-normalised, as embeddings are."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 0):
        super().__init__()
        if not (0 < in_dim <= MAX_HIDDEN and 0 < out_dim <= MAX_HIDDEN and 0 <= hidden <= MAX_HIDDEN):
            raise ValueError(f"a projection's sizes are 1 to {MAX_HIDDEN} (hidden 0 for linear), not "
                             f"{in_dim} -> {hidden} -> {out_dim}")
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, hidden
        if hidden:
            self.layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        else:
            self.layers = nn.Linear(in_dim, out_dim)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.layers(embeddings), dim=-1)

    @torch.inference_mode()
    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return self(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))).numpy()

    def save(self, artifact_dir: Path, space: str) -> Path:
        path = Path(artifact_dir) / space_file(space)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path), metadata={
            "space": space, "in_dim": str(self.in_dim), "out_dim": str(self.out_dim), "hidden": str(self.hidden)})
        return path

    @classmethod
    def load(cls, artifact_dir: Path, space: str) -> Projection:
        from safetensors import safe_open

        path = Path(artifact_dir) / space_file(space)
        if not path.is_file():
            raise FileNotFoundError(f"{artifact_dir} has no projection into {space} ({space_file(space)}); "
                                    "fit a projection into that space, or re-embed the gallery with this model")
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
        try:
            projection = cls(int(meta["in_dim"]), int(meta["out_dim"]), int(meta["hidden"]))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path} does not describe a projection ({error}); fit it again") from None
        projection.load_state_dict(load_file(str(path)))
        return projection.eval()


def misalignment(projected_new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine between each projected new embedding and the old embedding of the same item."""
    return (1 - (projected_new * old).sum(dim=-1)).mean()


def text_alignment_loss(projected_new_text: torch.Tensor, old_text: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE between projected new and old embeddings of the same captions (row i with row i),
    plus their misalignment: the regression pins each caption where the old model put it, the contrastive
    terms keep captions apart (on small sets InfoNCE alone fits a map that ranks well on what it saw only)."""
    logits = scale * projected_new_text @ old_text.T
    labels = torch.arange(len(logits), device=logits.device)
    return ((F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            + misalignment(projected_new_text, old_text))


def pair_alignment_loss(projected_new_image: torch.Tensor, projected_new_text: torch.Tensor, old_image: torch.Tensor,
                        old_text: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-modal InfoNCE in the old space, new text queries against old images and new image queries against
    old texts (row i of each is one pair), plus the misalignment of each image and each caption with itself."""
    labels = torch.arange(len(old_image), device=old_image.device)
    return ((F.cross_entropy(scale * projected_new_text @ old_image.T, labels)
             + F.cross_entropy(scale * projected_new_image @ old_text.T, labels)) / 2
            + misalignment(projected_new_image, old_image) + misalignment(projected_new_text, old_text))


def fit_projection(new_text: np.ndarray, old_text: np.ndarray, *, pairs: tuple[np.ndarray, ...] | None = None,
                   hidden: int = 0, steps: int = 300, batch_size: int = 256, lr: float = 1e-2, scale: float = 20.0,
                   seed: int = 0) -> tuple[Projection, dict[str, float]]:
    """Fit a projection from the new space into the old: `steps` on captions alone (new and old embeddings of
    the same captions, row by row), then, with `pairs` = (new images, new texts, old images, old texts) of
    matching rows, `steps` on image-text pairs. Returns the projection and each stage's last loss."""
    if len(new_text) != len(old_text) or len(new_text) < 2:
        raise ValueError(f"the text stage needs the same captions embedded by both models, at least 2 "
                         f"({len(new_text)} new, {len(old_text)} old)")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    projection = Projection(new_text.shape[1], old_text.shape[1], hidden)
    optimizer = torch.optim.AdamW(projection.parameters(), lr=lr, weight_decay=0.0)
    texts = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (new_text, old_text)]
    schedule = {"steps": steps, "batch_size": batch_size, "generator": generator}
    losses = {"text": _train(projection, optimizer, texts, lambda p, new, old: text_alignment_loss(p(new), old, scale),
                             **schedule)}
    if pairs is not None:
        tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in pairs]
        if len({len(t) for t in tensors}) != 1:
            raise ValueError("the pair stage needs one row per image-text pair in all four arrays")
        losses["pairs"] = _train(projection, optimizer, tensors,
                                 lambda p, ni, nt, oi, ot: pair_alignment_loss(p(ni), p(nt), oi, ot, scale), **schedule)
    return projection.eval(), losses


def _train(projection, optimizer, tensors, loss_of, *, steps: int, batch_size: int, generator) -> float:
    projection.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        rows = torch.randperm(len(tensors[0]), generator=generator)[:batch_size]
        loss = loss_of(projection, *(t[rows] for t in tensors))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())
