"""Perceptual hashes of images (pHash: the signs of the 16×16 lowest frequencies of a 64×64 DCT), which stay
within a few bits under resizing and re-encoding, and their near neighbours by Hamming distance in FAISS.

256 bits, not imagehash's default 64: on coco-mini a resized or re-encoded copy stays within 6 bits and
distinct photographs are 100 or more apart; with 64 bits, drawn shapes on plain backgrounds (the generated
data) hash alike at 0-6 bits, at 256 they are 20 or more apart.

pHash sees luminance structure only: a purple and an orange disc in the same place hash alike. So each
hash travels with an 8×8 colour thumbnail, and a pair within the bit distance is a near copy only where no
thumbnail cell differs by more than `MAX_COLOUR_DIFF` levels in any channel (copies measured on coco-mini:
5 at most; the two discs: 105)."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faiss
import imagehash
import numpy as np
from PIL import Image

from components.data.transforms import load_image

HASH_SIZE = 16  # the DCT's low-frequency square: HASH_SIZE² bits
HASH_BITS = HASH_SIZE * HASH_SIZE
HASH_BYTES = HASH_BITS // 8
THUMBNAIL = 8  # side of the colour thumbnail checked beside the hash
FINGERPRINT_BYTES = HASH_BYTES + THUMBNAIL * THUMBNAIL * 3
MAX_COLOUR_DIFF = 32  # levels of 255


def image_hash(image: Image.Image) -> bytes:
    """The pHash (packed bits) and colour thumbnail of an image as `load_image` loads it (EXIF orientation
    applied): FINGERPRINT_BYTES bytes."""
    thumbnail = np.asarray(image.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX), np.uint8)
    return np.packbits(imagehash.phash(image, hash_size=HASH_SIZE).hash.flatten()).tobytes() + thumbnail.tobytes()


def fingerprint(path: Path) -> tuple[str, bytes]:
    """The file's sha256 and the image's pHash (pixel count bounded before decoding), from one read."""
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), image_hash(load_image(Image.open(io.BytesIO(data))))


def fingerprints(paths: list[Path], workers: int = 4) -> tuple[list[str], np.ndarray]:
    """Per image, in order: the sha256s, and the hashes with their thumbnails as (N, FINGERPRINT_BYTES) uint8."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(fingerprint, paths))
    hashes = np.frombuffer(b"".join(h for _, h in found), dtype=np.uint8).reshape(len(paths), FINGERPRINT_BYTES)
    return [sha for sha, _ in found], hashes


def hash_matches(queries: np.ndarray, references: np.ndarray, max_distance: int | None) -> list[tuple[int, int]]:
    """(query, reference) pairs of fingerprints whose hashes are at most `max_distance` bits apart and whose
    thumbnails agree (none: no pairs); exact search (FAISS's binary flat index: about a billion comparisons
    a second, so 100k × 100k hashes in seconds)."""
    if max_distance is None or not len(queries) or not len(references):
        return []
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(np.ascontiguousarray(references[:, :HASH_BYTES]))
    limits, _, ids = index.range_search(np.ascontiguousarray(queries[:, :HASH_BYTES]), max_distance + 1)  # < radius
    query_colours, reference_colours = (rows[:, HASH_BYTES:].astype(np.int16) for rows in (queries, references))
    return [(q, int(r)) for q in range(len(queries)) for r in ids[limits[q]:limits[q + 1]]
            if np.abs(query_colours[q] - reference_colours[r]).max() <= MAX_COLOUR_DIFF]
