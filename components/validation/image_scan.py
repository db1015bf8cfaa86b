"""Scan every image of a manifest (in parallel threads) and every caption; name each bad row and why."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.data.manifest import ManifestError, resolve_image

MIN_SIDE = 8
MAX_PIXELS = 64_000_000


def scan_image(dataset_dir: Path, image: str) -> dict:
    """Facts about one image file, and `problem` (None when it is usable)."""
    facts = {"image": image, "problem": None, "width": None, "height": None, "mode": None}
    try:
        path = resolve_image(dataset_dir, image)
    except ManifestError:
        return facts | {"problem": "path leaves the dataset directory"}
    if not path.is_file():
        return facts | {"problem": "missing file"}
    if path.stat().st_size == 0:
        return facts | {"problem": "empty (0-byte) file"}
    try:
        with Image.open(path) as img:
            facts |= {"width": img.width, "height": img.height, "mode": img.mode}
            if img.width * img.height > MAX_PIXELS:
                return facts | {"problem": f"too many pixels ({img.width}x{img.height})"}
            img.load()  # decode fully: truncated files fail here, not in training
    except UnidentifiedImageError:
        return facts | {"problem": "not an image"}
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return facts | {"problem": f"does not decode: {error}"}
    if min(facts["width"], facts["height"]) < MIN_SIDE:
        return facts | {"problem": f"smaller than {MIN_SIDE} px on a side"}
    return facts


def scan_images(dataset_dir: Path, images: list[str], workers: int = 8) -> pd.DataFrame:
    """One row per distinct image."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return pd.DataFrame(list(pool.map(lambda image: scan_image(dataset_dir, image), images)),
                            columns=["image", "problem", "width", "height", "mode"])


def caption_problem(caption: object) -> str | None:
    if caption is None or (isinstance(caption, float) and pd.isna(caption)):
        return "caption missing"
    if not isinstance(caption, str):
        return f"caption is not text ({type(caption).__name__})"
    if not caption.strip():
        return "caption empty"
    return None
