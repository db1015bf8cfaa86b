"""DICOM to an 8-bit grayscale PNG, windowed as the file says (the images models train on)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import DeflatedExplicitVRLittleEndian

from components.data.transforms import ImageTooLarge

# Windowing works in float64 on several copies of the frame (~40 bytes a pixel): 25 M pixels (a 5000 x 5000
# mammogram; chest radiographs are ~3000 x 3000) stays near 1 GB. Larger scans are refused from the header.
MAX_DICOM_PIXELS = 25_000_000
MAX_HEADER_BYTES = 16 << 20  # what a DICOM dataset may hold beside its pixels (overlays, private tags)
BYTES_PER_SAMPLE = 4  # the widest sample DICOM pixel data stores (BitsAllocated 32)
INFLATE_CHUNK = 1 << 20


def dicom_to_png(source: Path, target: Path, max_pixels: int = MAX_DICOM_PIXELS) -> Path:
    """Apply the modality LUT (rescale slope/intercept) and the VOI LUT or window centre/width, invert
    MONOCHROME1 (where high values are dark), and scale the window to 0-255. The size the header declares
    (rows x columns x frames x samples) is checked against `max_pixels` before pixel data is read, and a
    deflated file is measured inflating (nothing kept) before pydicom inflates it whole."""
    check_header(Path(source), max_pixels)
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


def check_header(source: Path, max_pixels: int) -> None:
    """Refuse a DICOM file whose pixels would exceed `max_pixels`, reading no pixel data: a deflated dataset
    (the whole of it is one zlib stream) is first inflated chunk by chunk, counting and discarding, and may
    not exceed what `max_pixels` of the widest samples and a header need; then the header alone is parsed
    (large elements deferred) and its declared size checked."""
    meta = pydicom.filereader.read_file_meta_info(source)
    if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        _inflates_within(source, meta, max_pixels * BYTES_PER_SAMPLE + MAX_HEADER_BYTES)
    header = pydicom.dcmread(source, stop_before_pixels=True, defer_size=INFLATE_CHUNK)
    declared = [int(header.get(tag) or 1) for tag in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel")]
    if math.prod(declared) > max_pixels:
        raise ImageTooLarge(f"DICOM {source.name} declares {declared[0]}x{declared[1]} pixels x {declared[2]} "
                            f"frames x {declared[3]} samples, over the limit of {max_pixels}: shrink it before import")


def _inflates_within(source: Path, meta, limit: int) -> None:
    group_length = meta.get("FileMetaInformationGroupLength")
    if group_length is None:
        raise ImageTooLarge(f"DICOM {source.name} is deflated without a file meta group length: its size cannot be "
                            "checked before inflating it; re-save it uncompressed")
    inflater, inflated = zlib.decompressobj(-zlib.MAX_WBITS), 0
    with open(source, "rb") as stream:
        stream.seek(128 + 4 + 12 + int(group_length))  # preamble, "DICM", the group length element, the group
        while not inflater.eof and (pending := stream.read(INFLATE_CHUNK)):
            while pending and not inflater.eof:
                inflated += len(inflater.decompress(pending, INFLATE_CHUNK))
                if inflated > limit:
                    raise ImageTooLarge(f"DICOM {source.name} inflates past {limit:,} bytes, more than the pixel "
                                        "limit allows: refused before decoding; shrink it before import")
                pending = inflater.unconsumed_tail
