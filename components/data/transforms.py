"""Image decoding and preprocessing with Pillow and torch (torchvision does not import with CPU torch here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def load_image(source: Path | Image.Image) -> Image.Image:
    """An RGB image with its EXIF orientation applied."""
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


class ImageTransform:
    """Resize the short side, centre-crop to a square, scale to [0, 1], normalise per channel."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]):
        self.size = size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, image: Image.Image | Path) -> torch.Tensor:
        image = load_image(image)
        scale = self.size / min(image.size)
        if image.size != (self.size, self.size):
            resized = (max(self.size, round(image.width * scale)), max(self.size, round(image.height * scale)))
            image = image.resize(resized, Image.Resampling.BICUBIC)
            left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
            image = image.crop((left, top, left + self.size, top + self.size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (pixels - self.mean) / self.std
