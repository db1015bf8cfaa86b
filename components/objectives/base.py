"""What every objective sees, and the registry that turns config names into objective modules.

An objective is a plain `nn.Module` with rank and world size injected (as open_clip's losses are): it
takes the batch and the model's outputs for it and returns this rank's share of the loss, so that the
mean over ranks (what DDP's gradient averaging computes) equals the loss of the single-process global
batch.

An objective may hold state (a momentum encoder, feature queues): it makes it in `bind`, once the model's
starting weights are loaded, and moves it in `after_step`. Kept as its own submodules and buffers, that
state is part of the training module's state dict, hence of every checkpoint, and a resume restores it
exactly; it is never part of the exported model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Batch:
    """One training batch as the data module yields it."""

    pixels: torch.Tensor
    token_ids: torch.Tensor
    image_groups: torch.Tensor  # int code of image_id: captions of one image share it
    person_ids: torch.Tensor | None = None  # int code of person_id, where the dataset has one
    captions: list[str] = field(default_factory=list)


@dataclass
class Views:
    """Embeddings of second views of the batch's images and captions (for objectives with `needs_views`)."""

    image_emb: torch.Tensor
    text_emb: torch.Tensor


@dataclass
class Outputs:
    """The model's outputs for a batch, computed once and shared by all objectives."""

    image_emb: torch.Tensor  # (B, D), L2-normalised
    text_emb: torch.Tensor  # (B, D), L2-normalised
    logit_scale: torch.Tensor  # exp of the learnable log scale
    logit_bias: torch.Tensor | None
    image_tokens: torch.Tensor  # (B, patches + 1, vision width)
    text_tokens: torch.Tensor  # (B, context, text width)
    step: int = 0  # the global step: seeds any sampling, so a resumed run samples as the original did
    epochs: float = 0.0  # epochs trained, fractional (batch index / batches per epoch): ramps over the first epoch
    views: Views | None = None


class Objective(nn.Module):
    needs_views = False  # True: the module also encodes second views of the batch (`Outputs.views`)
    shards = True  # False: its state cannot be split over FSDP2's ranks (a whole momentum copy of the model)

    def __init__(self, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.rank, self.world_size = rank, world_size

    def bind(self, model: nn.Module) -> None:
        """Called once, before training, with the model's starting weights loaded."""

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimiser step, with the weights it made."""

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        raise NotImplementedError


OBJECTIVES: dict[str, type[Objective]] = {}


def register(name: str):
    def add(cls: type[Objective]) -> type[Objective]:
        OBJECTIVES[name] = cls
        return cls

    return add


def build_objective(name: str, options: dict, rank: int, world_size: int, **context) -> Objective:
    """`context` offers what some objectives need to build heads (`model_config`); each takes what it names."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {sorted(OBJECTIVES)}")
    cls = OBJECTIVES[name]
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(options) - set(accepted) - {"rank", "world_size"})
    if unknown:
        allowed = sorted(set(accepted) - {"self", "rank", "world_size", *context})
        raise ValueError(f"objective {name!r} has no option(s) {unknown}; it takes {allowed}")
    wanted = {k: v for k, v in context.items() if k in accepted}
    return cls(rank=rank, world_size=world_size, **wanted, **options)


class WeightedObjectives(nn.Module):
    """The weighted sum of several objectives; each part is reported for logging."""

    def __init__(self, parts: dict[str, Objective], weights: dict[str, float]):
        super().__init__()
        self.parts, self.weights = nn.ModuleDict(parts), weights

    def bind(self, model: nn.Module) -> None:
        for part in self.parts.values():
            part.bind(model)

    def after_step(self, model: nn.Module) -> None:
        for part in self.parts.values():
            part.after_step(model)

    def forward(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        losses = {name: part(batch, outputs) for name, part in self.parts.items()}
        total = sum(self.weights[name] * loss for name, loss in losses.items())
        return total, losses
