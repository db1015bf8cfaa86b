"""DICOM to an 8-bit grayscale PNG, windowed as the file says (the images models train on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut


def dicom_to_png(source: Path, target: Path) -> Path:
    """Apply the modality LUT (rescale slope/intercept) and the VOI LUT or window centre/width, invert
    MONOCHROME1 (where high values are dark), and scale the window to 0-255."""
    dataset = pydicom.dcmread(source)
    pixels = apply_modality_lut(dataset.pixel_array, dataset)
    pixels = apply_voi_lut(pixels, dataset) if "WindowCenter" in dataset or "VOILUTSequence" in dataset else pixels
    pixels = np.asarray(pixels, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        scaled = 1.0 - scaled
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(scaled * 255).astype(np.uint8), mode="L").save(target)
    return target
