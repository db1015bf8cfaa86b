"""Collectives for losses over a batch split across ranks.

Features gathered for a loss must carry gradients back to the rank that produced them: a plain
`dist.all_gather` returns constants, and every rank then misses the other ranks' share of its
embeddings' gradient (with two ranks, the encoder gradients come out halved).
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist

# The public autograd all-gather is marked deprecated in favour of a private API; it is still the supported one.
warnings.filterwarnings("ignore", message=r".*distributed\.nn\.functional\.all_gather is deprecated",
                        category=FutureWarning)


def gather_with_grad(x: torch.Tensor, world_size: int) -> torch.Tensor:
    """All ranks' `x` concatenated in rank order; the backward pass sums gradients back to the owners."""
    if world_size == 1:
        return x
    import torch.distributed.nn.functional as dist_nn

    return torch.cat(dist_nn.all_gather(x), dim=0)


def gather_constant(x: torch.Tensor, world_size: int) -> torch.Tensor:
    """All ranks' `x` concatenated, without gradient (labels, ids, teacher outputs)."""
    if world_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
