"""Scan every image of a manifest (in parallel) and every caption; name each
bad row and why. Modes a model can use after conversion (CMYK, 16-bit, palette, RGBA, grayscale) and
EXIF rotations are recorded, not rejected: `load_image` converts and rotates them."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import ClassVar

import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.config import ValidationConfig
from components.curation.hashing import image_hash
from components.data.location import ImageRoot, ImageUnreadable
from components.data.transforms import load_image
from components.partitions.plan import Work, digest

EXIF_ORIENTATION = 0x0112
# Signatures of image formats: a file that starts like one but cannot be read is corrupt, not "not an image".
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
PROCESS_POOL_FROM = 5000  # images; below it a process pool's start-up costs more than it saves
SCAN_COLUMNS = ["image", "problem", "width", "height", "mode", "aspect_ratio", "sha256", "exif_orientation", "phash"]


def scan_image(root: ImageRoot, image: str, config: ValidationConfig) -> dict:
    """Facts about one image file, and `problem` (None when it is usable)."""
    facts = dict.fromkeys(SCAN_COLUMNS) | {"image": image}
    try:
        data = root.read(image)
    except ImageUnreadable as unreadable:
        return facts | {"problem": str(unreadable)}
    facts["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # the bytes already read for sha256
                width, height = img.size
                facts |= {"width": width, "height": height, "mode": img.mode,
                          "aspect_ratio": max(width, height) / max(1, min(width, height)),
                          "exif_orientation": img.getexif().get(EXIF_ORIENTATION, 1)}
                if width * height > config.max_pixels:
                    return facts | {"problem": f"too many pixels ({width}x{height}): a decompression bomb?"}
                img.load()  # decode fully: truncated files fail here, not in training
                facts["phash"] = image_hash(load_image(img)).hex()  # near copies across splits
    except UnidentifiedImageError:
        if data.startswith(IMAGE_SIGNATURES):
            return facts | {"problem": "does not decode: corrupt header"}
        return facts | {"problem": "not an image"}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return facts | {"problem": f"too many pixels: a decompression bomb? ({error})"}
    except (OSError, SyntaxError, ValueError) as error:
        return facts | {"problem": f"does not decode: {error}"}
    if min(width, height) < config.min_side_px:
        return facts | {"problem": f"smaller than {config.min_side_px} px on a side ({width}x{height})"}
    if facts["aspect_ratio"] > config.max_aspect_ratio:
        return facts | {"problem": f"extreme aspect ratio {facts['aspect_ratio']:.1f} (limit "
                                   f"{config.max_aspect_ratio:g})"}
    return facts


def scan_images(root: ImageRoot, images: list[str], config: ValidationConfig, processes: bool = True) -> pd.DataFrame:
    """One row per distinct image (`processes=False`: threads only, as inside a cluster worker, whose own
    processes may not start children).

    Decoding releases the GIL but the checks around it do not, so threads stop scaling at the core
    count; large scans use processes (forkserver: safe beside the threads of Prefect or GX), small ones
    threads, whose start-up is free (figures in benchmarks/validation_scan.py).
    """
    scan = partial(scan_image, root, config=config)
    if processes and len(images) >= PROCESS_POOL_FROM and config.workers > 1:
        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            rows = list(pool.map(scan, images, chunksize=256))
    else:
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            rows = list(pool.map(scan, images))
    return pd.DataFrame(rows, columns=SCAN_COLUMNS)


def caption_problem(caption: object, config: ValidationConfig) -> str | None:
    """Language-independent checks: present, text, not blank, valid UTF-8, has letters, bounded length."""
    if caption is None or (isinstance(caption, float) and pd.isna(caption)):
        return "caption missing"
    if not isinstance(caption, str):
        return f"caption is not text ({type(caption).__name__})"
    if not caption.strip():
        return "caption empty"
    if "\ufffd" in caption or any("\ud800" <= ch <= "\udfff" for ch in caption):
        # readers decode invalid bytes to U+FFFD (or lone surrogates) instead of failing the whole file
        return "caption has invalid UTF-8"
    if len(caption) > config.max_caption_chars:
        return f"caption longer than {config.max_caption_chars} characters ({len(caption)})"
    if not any(ch.isalpha() for ch in caption):
        return "caption has no letters"
    return None


class ScanWork(Work):
    """Validation's scan of image files: one row per image (`SCAN_COLUMNS`)."""

    kind: ClassVar[str] = "scan"
    suffix: ClassVar[str] = "parquet"
    root: ImageRoot
    config: ValidationConfig

    def identity(self) -> str:
        # the thread count is how, not what: it must not change which parts a re-run finds
        return digest(self.kind, self.root, self.config.model_copy(update={"workers": 1}))

    def run(self, items: list[str]) -> pd.DataFrame:
        return scan_images(self.root, items, self.config, processes=False)

    def save(self, part: pd.DataFrame, path: Path) -> None:
        part.to_parquet(path, index=False)

    def load(self, path: Path) -> pd.DataFrame:
        return pd.read_parquet(path)

    def combine(self, parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SCAN_COLUMNS)
