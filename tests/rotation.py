"""A model in another embedding space: the same weights with both projections turned by one rotation, so it
ranks exactly as the original does while its vectors are meaningless to the original's gallery."""

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from components.models.artifact import WEIGHTS_FILE


def rotated(artifact: Path, target: Path, seed: int = 5) -> Path:
    copy = shutil.copytree(artifact, target)
    weights = load_file(str(copy / WEIGHTS_FILE))
    dim = weights["image_projection.weight"].shape[0]
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed)))
    for name in ("image_projection.weight", "text_projection.weight"):
        weights[name] = rotation @ weights[name]
    save_file(weights, str(copy / WEIGHTS_FILE), metadata={"format": "pt"})
    return copy
