"""Checkpoint files read with their size bounded first and no pickle: safetensors, or a torch file through
`torch.load(weights_only=True)` (open_clip's `.bin`/`.pt`, training checkpoints with `state_dict`)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from components.config import ModelConfig

SLACK_BYTES = 64 << 20  # headers, optimiser-free training checkpoints' counters, rounding


def max_checkpoint_bytes(config: ModelConfig) -> int:
    """The largest file a model of `config` can be in float32: a bigger one holds something else."""
    return int(config.parameter_estimate() * 4 * 1.25) + SLACK_BYTES


def read_weights(path: Path, max_bytes: int) -> dict[str, torch.Tensor]:
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size / 1e6:.0f} MB, more than a model of the declared shape can be "
                         f"({max_bytes / 1e6:.0f} MB): check the architecture against the weights")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:  # mmap: tensors are paged in as they are copied, not read whole first (zip files only)
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        except pickle.UnpicklingError as refused:
            raise ValueError(f"{path.name} holds objects other than tensors, and nothing of it was run: "
                             f"{str(refused).splitlines()[0]}") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]  # open_clip's training checkpoints
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict of tensors")
    broken = [name for name, tensor in state.items() if not torch.isfinite(tensor.float()).all()]
    if broken:  # a NaN scale or weight would import as a model whose every score is NaN
        raise ValueError(f"{path.name} holds NaN or infinite values in {len(broken)} tensor(s) ({', '.join(broken[:3])}"
                         "): refused, since nothing measured on it would mean anything")
    # DDP-trained checkpoints prefix every name with `module.`
    return {k.removeprefix("module."): v.float() for k, v in state.items()}
