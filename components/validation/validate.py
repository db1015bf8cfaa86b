"""Validate a dataset directory: scan images and captions, run the GX suite, quarantine bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import ValidationConfig
from components.curation.decide import normalised
from components.curation.hashing import FINGERPRINT_BYTES, HASH_BYTES, hash_matches
from components.data.location import ImageRoot
from components.data.manifest import SPLITS, read_manifest
from components.partitions.plan import IN_PROCESS, Runner
from components.validation.expectations import run_suite
from components.validation.image_scan import ScanWork, caption_problem
from components.validation.validated import ImageFacts, QuarantinedRow, ValidationReport

LEAK = "image also in the train split (train/test leakage)"
REPEATED_ON = 5  # images one caption describes before it is looked at
UNRELATED_BITS = 64  # of 256: copies differ by 6 or fewer bits, distinct photographs by 100 or more
MAX_COMPARED = 200  # images of one caption compared pairwise
REPORT_FILE, QUARANTINE_FILE, SCAN_FILE, DOCS_DIR = "validation.json", "quarantine.csv", "images.parquet", "data-docs"


def validate_dataset(dataset_dir: Path, config: ValidationConfig | None = None, out_dir: Path | None = None, *,
                     images_at: str | None = None, runner: Runner = IN_PROCESS) -> ValidationReport:
    """With `out_dir`, also writes the per-image scan and GX Data Docs there (see `write_report`). The images
    are read from `images_at` (the dataset directory when None; an S3 prefix for a dataset on S3), by
    `runner`'s processes."""
    config = config or ValidationConfig()
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir, strict=False, max_rows=config.max_rows,  # bounded before it is decoded
                             max_bytes=config.max_manifest_bytes)
    root = ImageRoot(root=images_at or str(dataset_dir), max_bytes=config.max_image_bytes)
    images = runner.map(ScanWork(root=root, config=config), manifest["image"].dropna().astype(str).unique().tolist())
    frame = manifest.assign(**derived_columns(manifest, images, config.near_duplicate_bits))
    docs = out_dir / DOCS_DIR if out_dir else None
    checks = run_suite(frame, config, docs)
    reasons = [row or (image if image != "ok" else LEAK if leaked else caption_problem(caption, config))
               for row, image, leaked, caption in zip(row_problems(manifest), frame["image_problem"],
                                                      frame["leaked_from_train"], frame["caption"], strict=True)]
    quarantine = [QuarantinedRow(sample_id=str(sid), reason=reason)
                  for sid, reason in zip(frame["sample_id"], reasons, strict=True) if reason]
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        images.to_parquet(out_dir / SCAN_FILE, index=False)
    return ValidationReport(
        dataset=str(dataset_dir), rows_in=len(frame), rows_kept=len(frame) - len(quarantine),
        rows_quarantined=len(quarantine), max_rejected_fraction=config.max_rejected_fraction, checks=checks,
        quarantine=quarantine, image_facts=image_facts(images),
        data_docs=str(docs / "index.html") if docs and (docs / "index.html").exists() else None)


def row_problems(manifest: pd.DataFrame) -> list[str | None]:
    """Per row, what breaks the manifest's contract (None if nothing): a missing or repeated `sample_id` (every
    row of a repeated id is quarantined: which one is right cannot be told), a split outside train/val/test,
    a missing image or image_id. Each is a quarantined row of the report, never an abort before it."""
    ids = manifest["sample_id"].where(manifest["sample_id"].notna(), None).map(lambda v: None if v is None else str(v))
    repeats = ids.map(ids.value_counts())
    problems = []
    for sample_id, repeated, split, image, image_id in zip(ids, repeats, manifest["split"], manifest["image"],
                                                           manifest["image_id"], strict=True):
        problems.append(
            "sample_id missing" if sample_id is None
            else f"sample_id {sample_id[:80]!r} repeated on {int(repeated)} rows" if repeated > 1
            else f"split {str(split)[:40]!r} is not one of {', '.join(SPLITS)}" if split not in SPLITS
            else "image missing" if _missing(image)
            else "image_id missing" if _missing(image_id)
            else None)
    return problems


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value)


def derived_columns(manifest: pd.DataFrame, images: pd.DataFrame, near_bits: int) -> dict[str, pd.Series]:
    """Per row: the image's problem ("ok" if none), its sha256, whether the same bytes also appear under
    another image_id (a duplicate image), whether a val/test row's image is also in train (leakage), the
    train image a val/test image nearly copies, and a caption repeated across unrelated pictures ("" if
    none)."""
    by_image = images.set_index("image")
    sha = manifest["image"].astype(str).map(by_image["sha256"])
    phash = manifest["image"].astype(str).map(by_image["phash"])
    ids_per_sha = manifest.assign(sha=sha).dropna(subset=["sha"]).groupby("sha")["image_id"].nunique()
    train_shas = set(sha[manifest["split"] == "train"].dropna())
    return {"image_problem": manifest["image"].astype(str).map(by_image["problem"]).fillna("ok"),
            "image_sha256": sha.astype(object).where(sha.notna(), None),  # None: no bytes (missing, unsafe)
            "duplicate_image": sha.map(ids_per_sha).fillna(1).gt(1),
            "leaked_from_train": (manifest["split"] != "train") & sha.isin(train_shas),
            "near_copy_of_train": near_copies(manifest, phash, near_bits),
            "repeated_caption": repeated_captions(manifest, phash)}


def near_copies(manifest: pd.DataFrame, phash: pd.Series, near_bits: int) -> pd.Series:
    """Per row: for a val/test image whose perceptual hash is within `near_bits` of a train image's,
    `"<image_id> ~ <train image_id>"` (so the check's examples name both); else ""."""
    hashed = manifest.assign(phash=phash).dropna(subset=["phash"]).drop_duplicates("image_id")
    train, held_out = hashed[hashed["split"] == "train"], hashed[hashed["split"] != "train"]
    matches = hash_matches(_hashes(held_out["phash"]), _hashes(train["phash"]), near_bits)
    first = {}
    for query, reference in matches:
        first.setdefault(held_out["image_id"].iloc[query], train["image_id"].iloc[reference])
    return manifest["image_id"].map(lambda image_id: f"{image_id} ~ {first[image_id]}" if image_id in first else "")


def repeated_captions(manifest: pd.DataFrame, phash: pd.Series) -> pd.Series:
    """Per row whose caption (normalised) describes `REPEATED_ON` or more images that look unrelated (their
    median pairwise pHash distance is at least `UNRELATED_BITS`): `"'<caption>' on N images"`; else "".
    One caption on many unrelated pictures is what a poisoning attack plants (CleanCLIP: one target caption
    on every triggered image); a generic caption ("a photo") looks the same, so this is a warning."""
    text = manifest["caption"].map(normalised)
    hashed = manifest.assign(text=text, phash=phash).dropna(subset=["phash"]).drop_duplicates(["text", "image_id"])
    flagged = {}
    for caption, group in hashed.groupby("text"):
        if len(group) >= REPEATED_ON:
            bits = np.unpackbits(_hashes(group["phash"].head(MAX_COMPARED))[:, :HASH_BYTES], axis=1).astype(np.int16)
            distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)[np.triu_indices(len(bits), 1)]
            if np.median(distances) >= UNRELATED_BITS:
                flagged[caption] = f"{caption[:80]!r} on {len(group)} images"
    return text.map(lambda caption: flagged.get(caption, ""))


def _hashes(hexes: pd.Series) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), np.uint8).reshape(len(hexes), FINGERPRINT_BYTES)


def image_facts(images: pd.DataFrame) -> ImageFacts:
    decoded = images[images["mode"].notna()]
    return ImageFacts(images=len(images), modes=decoded["mode"].value_counts().to_dict(),
                      exif_rotated=int((decoded["exif_orientation"].fillna(1) != 1).sum()),
                      duplicate_images=int(decoded["sha256"].duplicated().sum()))


def write_report(report: ValidationReport, out_dir: Path) -> tuple[Path, Path]:
    """The JSON report (with the verdict) and the quarantine list (sample_id, reason)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path, quarantine_path = out_dir / REPORT_FILE, out_dir / QUARANTINE_FILE
    payload = report.model_dump(mode="json") | {"passed": report.passed, "rejected_fraction": report.rejected_fraction}
    report_path.write_text(json.dumps(payload, indent=2))
    pd.DataFrame([q.model_dump() for q in report.quarantine], columns=["sample_id", "reason"]).to_csv(
        quarantine_path, index=False)
    return report_path, quarantine_path
