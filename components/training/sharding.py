"""FSDP2 (`torch.distributed.fsdp.fully_shard`): a training module's parameters sharded over the data-parallel
ranks, so each rank holds 1/N of the weights, gradients and optimizer state between the layers it computes.

Each transformer block of both towers is its own unit (gathered for its forward and backward, then freed), the
dual encoder the rest of its weights, and the objectives (their heads) another: units whose forward is called,
since FSDP2 gathers a unit's weights in its forward's hook (a LightningModule's `training_step` is none).
FSDP2 cannot shard a scalar (the logit scale and bias): those stay whole on every rank and their gradients are
averaged over the ranks as they are produced, as DDP would; FSDP2 averages the sharded ones the same way, so a
step equals one process on the whole batch.

Lightning's `ModelParallelStrategy` calls `LightningModule.configure_model`, which calls `shard` here; the GPU
suite's FSDP part and the gloo test on CPU run this same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard

from components.models.towers import encoder_layers


def shard(model: nn.Module, heads: nn.Module, mesh: DeviceMesh) -> None:
    """Shard `model` (a DualEncoder) and `heads` (the objectives, which may hold none) over `mesh`, in place."""
    scalars = {p for p in [*model.parameters(), *heads.parameters()] if p.ndim == 0}
    for tower in (model.vision, model.text):
        for block in encoder_layers(tower):
            fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh, ignored_params=scalars & set(model.parameters()) or None)
    if any(p.ndim > 0 for p in heads.parameters()):
        fully_shard(heads, mesh=mesh, ignored_params=scalars & set(heads.parameters()) or None)
    group = mesh.get_group()
    for scalar in scalars:
        if scalar.requires_grad:
            scalar.register_post_accumulate_grad_hook(lambda p: _average(p, group))


def _average(parameter: torch.Tensor, group: dist.ProcessGroup) -> None:
    dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM, group=group)
    parameter.grad.div_(dist.get_world_size(group))


def is_sharded(module: nn.Module) -> bool:
    return any(hasattr(p, "full_tensor") for p in module.parameters())


PREVIOUS = ".previous"  # the checkpoint being replaced, for the instant between two renames


class ShardedCheckpoints(ModelParallelStrategy):
    """Lightning's ModelParallelStrategy, whose sharded checkpoint (a folder: one file per rank and the loops'
    metadata) is written beside its place and then swapped in, so a run killed while writing keeps the whole
    checkpoint before it. Writing into the folder in place, a kill mid-write left the new shards under the old
    metadata, and the resumed run diverged from the uninterrupted one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None) -> None:
        final = Path(self.broadcast(str(filepath)))
        staging = final.with_name(final.name + ".partial")
        if self.global_rank == 0:
            shutil.rmtree(staging, ignore_errors=True)  # a kill's leftover
        self.barrier()
        super().save_checkpoint(checkpoint, staging, storage_options)
        self.barrier()  # every rank's shard is written
        if self.global_rank == 0:
            swap_in(staging, final)
        self.barrier()


def swap_in(staging: Path, final: Path) -> None:
    """`staging` becomes `final`; the old `final` waits as `<final>.previous` between the two renames."""
    previous = final.with_name(final.name + PREVIOUS)
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        os.rename(final, previous)
    os.rename(staging, final)
    shutil.rmtree(previous, ignore_errors=True)


def whole_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """A sharded checkpoint's dual-encoder weights, gathered whole (torch.distributed.checkpoint's own
    conversion: no process group, no pickle)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(checkpoint, Path(tmp) / "whole.pt")
        state = torch.load(Path(tmp) / "whole.pt", map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def checkpoint_step(checkpoint: Path) -> int:
    """The step a sharded checkpoint was written at (Lightning's metadata beside the shards)."""
    return torch.load(Path(checkpoint) / "meta.pt", map_location="cpu", weights_only=True)["global_step"]
