"""MIMIC-CXR style chest X-rays: a metadata CSV (`dicom_id, subject_id, study_id, ViewPosition`), a
split CSV (`dicom_id, split`), and one free-text report per study at
`files/p<subject[:2]>/p<subject>/s<study>.txt`; images beside them as `<dicom_id>.jpg` or `.dcm`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.manifest import ManifestError
from components.text.reports import report_caption
from core.containment import UnsafePath, inside

SPLIT_NAMES = {"train": "train", "validate": "val", "val": "val", "test": "test"}
METADATA, SPLITS, CHEXPERT = ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-split.csv",
                              "mimic-cxr-2.0.0-chexpert.csv")


def _inside(root: Path, path: Path) -> bool:
    try:
        inside(root, path)
        return True
    except UnsafePath:
        return False


def chexpert_labels(root: Path) -> dict[str, str]:
    """study_id -> its one positive finding (lower case), from the CheXpert labeler's CSV when present;
    studies with none or several positives get no label (zero-shot evaluation needs exactly one)."""
    path = root / CHEXPERT
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"study_id": str, "subject_id": str})
    findings = [c for c in table.columns if c not in ("subject_id", "study_id")]
    labels = {}
    for row in table.to_dict("records"):
        positive = [f for f in findings if row[f] == 1.0]
        if len(positive) == 1:
            labels[row["study_id"]] = positive[0].lower()
    return labels


def read_mimic(root: Path, sections: tuple[str, ...] = ("findings", "impression"),
               views: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per image; the caption is the requested report sections (None where the report lacks
    them, so validation names the row)."""
    root = Path(root)
    missing = [name for name in (METADATA, SPLITS) if not (root / name).is_file()]
    if missing:
        raise ManifestError(f"{root} is not a MIMIC-CXR style folder: missing {missing}")
    metadata = pd.read_csv(root / METADATA, dtype=str)
    splits = pd.read_csv(root / SPLITS, dtype=str)[["dicom_id", "split"]]
    frame = metadata.merge(splits, on="dicom_id", how="left")
    if views:
        frame = frame[frame["ViewPosition"].isin(views)]
    rows, reports, labels = [], {}, chexpert_labels(root)
    for record in frame.itertuples():
        study_dir = root / "files" / f"p{record.subject_id[:2]}" / f"p{record.subject_id}"
        report = study_dir / f"s{record.study_id}.txt"
        if report not in reports:  # ids from the CSV never lead a read out of the folder
            reports[report] = report_caption(report.read_text(encoding="utf-8", errors="replace"), sections) \
                if _inside(root, report) and report.is_file() else None
        image = next((p for ext in (".jpg", ".png", ".dcm") if (p := study_dir / f"s{record.study_id}" /
                                                                   f"{record.dicom_id}{ext}").exists()),
                     study_dir / f"s{record.study_id}" / f"{record.dicom_id}.jpg")
        rows.append({"sample_id": f"mimic-{record.dicom_id}", "image": str(image), "caption": reports[report],
                     "image_id": f"mimic-{record.dicom_id}", "split": SPLIT_NAMES.get(record.split, record.split),
                     "source": "mimic-cxr", "view": getattr(record, "ViewPosition", None),
                     "label": labels.get(record.study_id)})
    return pd.DataFrame(rows)
