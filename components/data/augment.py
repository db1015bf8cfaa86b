"""Training-time image augmentation, configured by `Augmentation` (a domain preset sets it)."""

from __future__ import annotations

import random

from PIL import Image, ImageOps

from components.config import Augmentation


def augment(image: Image.Image, rng: random.Random, config: Augmentation) -> Image.Image:
    """RGB in, RGB out; `rng` is seeded per (seed, epoch, row), so a resumed run sees the same images."""
    if config.grayscale:
        image = ImageOps.grayscale(image).convert("RGB")  # no colour jitter: intensity is the signal
    if config.rotations:
        image = image.rotate(90 * rng.randrange(4))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
    if config.crop:  # mild, kept within what captions describe
        scale = rng.uniform(0.9, 1.0)
        width, height = round(image.width * scale), round(image.height * scale)
        left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
        image = image.crop((left, top, left + width, top + height))
    return image
