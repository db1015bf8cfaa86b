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

import faiss
import imagehash
import numpy as np
from PIL import Image

from components.data.location import ImageRoot
from components.data.transforms import load_image

HASH_SIZE = 16  # the DCT's low-frequency square: HASH_SIZE² bits
HASH_BITS = HASH_SIZE * HASH_SIZE
HASH_BYTES = HASH_BITS // 8
THUMBNAIL = 8  # side of the colour thumbnail checked beside the hash
FINGERPRINT_BYTES = HASH_BYTES + THUMBNAIL * THUMBNAIL * 3
MAX_COLOUR_DIFF = 32  # levels of 255
NEIGHBOURS = 32  # nearest hashes looked at per image: bounds the pairs to 32 per image


def image_hash(image: Image.Image) -> bytes:
    """The pHash (packed bits) and colour thumbnail of an image as `load_image` loads it (EXIF orientation
    applied): FINGERPRINT_BYTES bytes."""
    thumbnail = np.asarray(image.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX), np.uint8)
    return np.packbits(imagehash.phash(image, hash_size=HASH_SIZE).hash.flatten()).tobytes() + thumbnail.tobytes()


def fingerprint(data: bytes, perceptual: bool = True) -> tuple[str, bytes, Image.Image]:
    """The file's sha256, the image's pHash (pixel count bounded before decoding; none without `perceptual`),
    and the decoded image, from one read: whoever also embeds the image takes it from here instead of reading
    the file again."""
    image = load_image(Image.open(io.BytesIO(data)))
    return hashlib.sha256(data).hexdigest(), image_hash(image) if perceptual else b"", image


def fingerprints(root: ImageRoot, images: list[str], workers: int = 4,
                 perceptual: bool = True) -> tuple[list[str], np.ndarray, list[Image.Image]]:
    """Per image of `root`, in order: the sha256s, the hashes with their thumbnails as (N, FINGERPRINT_BYTES)
    uint8 ((N, 0) without `perceptual`), and the decoded images (callers pass a bounded number at a time)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(lambda image: fingerprint(root.read(image), perceptual), images))
    width = FINGERPRINT_BYTES if perceptual else 0
    hashes = np.frombuffer(b"".join(h for _, h, _ in found), dtype=np.uint8).reshape(len(images), width)
    return [sha for sha, _, _ in found], hashes, [image for *_, image in found]


def hash_matches(queries: np.ndarray, references: np.ndarray, max_distance: int | None,
                 neighbours: int = NEIGHBOURS) -> list[tuple[int, int]]:
    """(query, reference) pairs: among each query's `neighbours` nearest reference hashes, those at most
    `max_distance` bits apart whose thumbnails agree (none: no pairs). Exact search (FAISS's binary flat
    index: about a billion comparisons a second, so 100k × 100k hashes in seconds), bounded: a range search
    over 10,000 copies of one blank picture would return 10⁸ pairs; here a query yields `neighbours` at most,
    and a cluster of copies still links up through them (ties go to the lowest ids, shared by all)."""
    if max_distance is None or not len(queries) or not len(references):
        return []
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(np.ascontiguousarray(references[:, :HASH_BYTES]))
    distances, ids = index.search(np.ascontiguousarray(queries[:, :HASH_BYTES]), min(neighbours, len(references)))
    query_colours, reference_colours = (rows[:, HASH_BYTES:].astype(np.int16) for rows in (queries, references))
    return [(q, int(r)) for q in range(len(queries)) for distance, r in zip(distances[q], ids[q], strict=True)
            if r >= 0 and distance <= max_distance
            and np.abs(query_colours[q] - reference_colours[r]).max() <= MAX_COLOUR_DIFF]
