"""Decoding photographs for the model: a full decode against the reduced-scale decode `ImageTransform.draft`
allows (libjpeg's DCT scaling), side by side in this process on the same JPEG bytes, alternating, best of
--rounds. Each row is one image opened, decoded and fitted to the model's square, as the serving front,
training's loader and evaluation do per image; `max diff` is the largest grey-level difference between
the two squares.
Usage: python -m benchmarks.image_decode [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from components.data.transforms import ImageTransform

PHOTOS = ((1280, 960), (2000, 1500), (4000, 3000), (6000, 4000))
MODEL_SIZES = (64, 224)


def photo_jpeg(width: int, height: int) -> bytes:
    """A smooth colour field, saved as a camera would (quality 92)."""
    coarse = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def full_decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()  # decoded: `fit`'s draft leaves it whole
    return image


def elapsed_ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e3


def compare(data: bytes, size: int, rounds: int) -> tuple[str, float, float, int]:
    """(decoded size, best full ms, best draft ms, max grey-level difference) for one photo and model size."""
    transform = ImageTransform(size, (0.5,) * 3, (0.25,) * 3)

    def full() -> np.ndarray:
        return transform.fit(full_decode(data))

    def drafted() -> np.ndarray:
        return transform.fit(Image.open(io.BytesIO(data)))

    difference = int(np.abs(full().astype(int) - drafted()).max())  # also the warm-up
    timings = [(elapsed_ms(full), elapsed_ms(drafted)) for _ in range(rounds)]  # alternating
    decoded_at = "x".join(map(str, transform.draft(Image.open(io.BytesIO(data))).size))
    return decoded_at, min(t[0] for t in timings), min(t[1] for t in timings), difference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{'photo':>11} {'model':>5} {'decoded at':>11} {'full ms':>8} {'draft ms':>8} {'speed-up':>8} "
          f"{'max diff':>8}")
    for width, height in PHOTOS:
        data = photo_jpeg(width, height)
        for size in MODEL_SIZES:
            decoded_at, full_ms, draft_ms, difference = compare(data, size, args.rounds)
            print(f"{width}x{height:<6} {size:>5} {decoded_at:>11} {full_ms:8.1f} {draft_ms:8.1f} "
                  f"{full_ms / draft_ms:7.1f}x {difference:8d}")


if __name__ == "__main__":
    main()
