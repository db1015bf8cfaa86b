"""Image decoding and preprocessing with Pillow and torch (torchvision does not import with CPU torch here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

MAX_PIXELS = 64_000_000  # the default of ValidationConfig.max_pixels: larger declared sizes are never decoded


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than the limit (a decompression bomb, or a scan to shrink)."""


def check_pixels(image: Image.Image, max_pixels: int = MAX_PIXELS, where: str = "image") -> Image.Image:
    """Refuse an opened (not yet decoded) image whose header declares more than `max_pixels`."""
    if image.width * image.height > max_pixels:
        raise ImageTooLarge(f"{where} declares {image.width}x{image.height} pixels, over the limit of {max_pixels}: "
                            "shrink it before use")
    return image


def load_image(source: Path | Image.Image, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An RGB image with its EXIF orientation applied, from any mode users have; the declared size is checked
    against `max_pixels` before decoding.

    Pillow's own conversions clip 16-bit and float images to white and turn transparent pixels black;
    these are rescaled to 8 bits and composited on white instead.
    """
    image = check_pixels(source if isinstance(source, Image.Image) else Image.open(source), max_pixels, str(source)
                         if not isinstance(source, Image.Image) else "image")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and pixels.max() <= 65535 else max(float(pixels.max()), 1e-12)
        image = Image.fromarray(np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


class ImageTransform:
    """Fit to a square (resize the short side and centre-crop; resize the long side and pad with the mean
    colour, for tall person crops; or squash, as SigLIP does), scale to [0, 1], normalise per channel."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], fit: str = "crop",
                 reduced_decode: bool = True):
        self.size, self.fit_mode, self.fill = size, fit, tuple(round(255 * m) for m in mean)
        self.reduced_decode = reduced_decode
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    @classmethod
    def for_model(cls, config) -> ImageTransform:
        """The preprocessing a model artifact's config (`ModelConfig`) prescribes."""
        return cls(config.vision.image_size, config.image_mean, config.image_std, config.image_fit,
                   config.reduced_decode)

    def __call__(self, image: Image.Image | Path) -> torch.Tensor:
        return self.normalise(self.fit(image))

    def decode(self, source: Image.Image | Path) -> Image.Image:
        """The RGB image, EXIF rotation applied, a large JPEG at the reduced scale `draft` allows."""
        image = source if isinstance(source, Image.Image) else Image.open(source)
        return load_image(self.draft(check_pixels(image, where=str(source) if isinstance(source, Path) else "image")))

    def fit(self, image: Image.Image | Path) -> np.ndarray:
        """The square the model sees, as uint8 RGB (size, size, 3): a quarter of the float pixels' bytes."""
        return self.fit_decoded(self.decode(image))

    def fit_decoded(self, image: Image.Image) -> np.ndarray:
        """`fit` for an RGB image that `decode` made (or an augmentation of one): it is not decoded again.
        The short side's resize and the centre crop round as torchvision's `Resize` and `CenterCrop` do, so
        models from open_clip see the pixels they were trained on."""
        if self.fit_mode == "pad" and image.size != (self.size, self.size):
            image = self._pad(image)
        if self.fit_mode == "squash":
            return np.asarray(image.resize((self.size, self.size), Image.Resampling.BICUBIC)
                              if image.size != (self.size, self.size) else image)
        width, height = image.size
        resized = (self.size, int(self.size * height / width)) if width <= height else \
            (int(self.size * width / height), self.size)
        if image.size != resized:
            image = image.resize(resized, Image.Resampling.BICUBIC)
        left, top = int(round((image.width - self.size) / 2.0)), int(round((image.height - self.size) / 2.0))
        if image.size != (self.size, self.size):
            image = image.crop((left, top, left + self.size, top + self.size))
        return np.asarray(image)

    def draft(self, image: Image.Image) -> Image.Image:
        """An opened JPEG set to decode at 1/2 or 1/4 scale (libjpeg's DCT scaling) where it stays at least
        twice the size that `fit` resizes to: 3-9x faster for 1-24 MP photos, and the square is within two grey
        levels of a full decode's (benchmarks/image_decode.py). Not 1/8, which keeps only each block's mean
        (12 levels off). Other formats and decoded images are left as they are, and so is every image of a
        model imported from open_clip (`reduced_decode` off), whose pixels must equal a full decode's.
        Training, evaluation and serving all decode through here, so they see the same pixels."""
        if not self.reduced_decode:
            return image
        scale = max(2 * self.size / (min(image.size) if self.fit_mode == "crop" else max(image.size)), 0.25)
        if scale <= 0.5:
            image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        return image

    def normalise(self, fitted: np.ndarray) -> torch.Tensor:
        """uint8 (..., H, W, 3) from `fit` to normalised float (..., 3, H, W); the same operations for one
        image or a stack, so the results are equal bit for bit."""
        pixels = torch.from_numpy(fitted.astype(np.float32) / 255.0).movedim(-1, -3)
        return (pixels - self.mean) / self.std

    def _pad(self, image: Image.Image) -> Image.Image:
        scale = self.size / max(image.size)
        resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                               Image.Resampling.BICUBIC)
        canvas = Image.new("RGB", (self.size, self.size), self.fill)
        canvas.paste(resized, ((self.size - resized.width) // 2, (self.size - resized.height) // 2))
        return canvas
