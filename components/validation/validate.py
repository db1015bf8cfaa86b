"""Validate a dataset directory: scan images and captions, run the GX suite, quarantine bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from components.data.manifest import read_manifest
from components.validation.expectations import run_suite
from components.validation.image_scan import caption_problem, scan_images
from components.validation.report import QuarantinedRow, ValidationReport

REPORT_FILE, QUARANTINE_FILE = "validation.json", "quarantine.csv"


def validate_dataset(dataset_dir: Path, max_rejected_fraction: float = 0.05, workers: int = 8) -> ValidationReport:
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir, strict=False)
    images = scan_images(dataset_dir, manifest["image"].astype(str).unique().tolist(), workers)
    image_problem = manifest["image"].astype(str).map(images.set_index("image")["problem"])
    frame = manifest.assign(image_problem=image_problem.fillna("ok"))
    checks = run_suite(frame)
    reasons = [image if image != "ok" else caption_problem(caption)
               for image, caption in zip(frame["image_problem"], frame["caption"], strict=True)]
    quarantine = [QuarantinedRow(sample_id=str(sid), reason=reason)
                  for sid, reason in zip(frame["sample_id"], reasons, strict=True) if reason]
    return ValidationReport(dataset=str(dataset_dir), rows_in=len(frame), rows_kept=len(frame) - len(quarantine),
                            rows_quarantined=len(quarantine), max_rejected_fraction=max_rejected_fraction,
                            checks=checks, quarantine=quarantine)


def write_report(report: ValidationReport, out_dir: Path) -> tuple[Path, Path]:
    """The JSON report (with the verdict) and the quarantine list (sample_id, reason)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path, quarantine_path = out_dir / REPORT_FILE, out_dir / QUARANTINE_FILE
    payload = report.model_dump(mode="json") | {"passed": report.passed, "rejected_fraction": report.rejected_fraction}
    report_path.write_text(json.dumps(payload, indent=2))
    pd.DataFrame([q.model_dump() for q in report.quarantine], columns=["sample_id", "reason"]).to_csv(
        quarantine_path, index=False)
    return report_path, quarantine_path
