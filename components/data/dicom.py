"""DICOM to an 8-bit grayscale PNG, windowed as the file says (the images models train on)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from components.data.transforms import ImageTooLarge

# Windowing works in float64 on several copies of the frame (~40 bytes a pixel): 25 M pixels (a 5000 x 5000
# mammogram; chest radiographs are ~3000 x 3000) stays near 1 GB. Larger scans are refused from the header.
MAX_DICOM_PIXELS = 25_000_000


def dicom_to_png(source: Path, target: Path, max_pixels: int = MAX_DICOM_PIXELS) -> Path:
    """Apply the modality LUT (rescale slope/intercept) and the VOI LUT or window centre/width, invert
    MONOCHROME1 (where high values are dark), and scale the window to 0-255. The size the header declares
    (rows x columns x frames x samples) is checked against `max_pixels` before any pixel is decoded."""
    dataset = pydicom.dcmread(source)
    declared = [int(dataset.get(tag) or 1) for tag in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel")]
    if math.prod(declared) > max_pixels:
        raise ImageTooLarge(f"DICOM {Path(source).name} declares {declared[0]}x{declared[1]} pixels x {declared[2]} "
                            f"frames x {declared[3]} samples, over the limit of {max_pixels}: shrink it before import")
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
