"""Chest "radiographs" with findings, written as MIMIC-CXR: metadata, split and CheXpert-label CSVs,
one report per study under `files/p<xx>/p<subject>/s<study>.txt`, images beside it (a share as 16-bit
DICOM with a VOI window, the rest as JPEG).

Each image shows one of five findings on one side; the report says which, in radiologists' shorthand
(abbreviations, de-identification blanks), and the CheXpert CSV marks it positive (one positive per
image, as in CheXpert 5x200).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

FINDINGS = ("atelectasis", "cardiomegaly", "consolidation", "edema", "pleural effusion")
CHEXPERT_COLUMNS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
SIDES = ("left", "right")
SIZE = 96

FINDING_TEXT = {  # the main finding leads the FINDINGS section and names the finding
    "atelectasis": ("{side} lower lobe atelectasis w/ volume loss.", "{abbr} basilar atelectasis."),
    "cardiomegaly": ("cardiomegaly, the heart is enlarged.", "mod cardiomegaly."),
    "consolidation": ("dense consolidation in the {side} {zone} zone.", "{side} {zone} lung consolidation."),
    "edema": ("b/l perihilar haziness c/w pulmonary edema.", "diffuse interstitial edema, b/l."),
    "pleural effusion": ("{size} {side} pleural eff. w/ blunting of the costophrenic angle.",
                         "{side} pleural effusion, {size}."),
}
IMPRESSION = {
    "atelectasis": "{side} basilar atelectasis.", "cardiomegaly": "cardiomegaly.",
    "consolidation": "{side} {zone} consolidation, ? pna.", "edema": "pulmonary edema.",
    "pleural effusion": "{size} {side} pleural effusion.",
}
PREAMBLE = ("EXAMINATION: CHEST (PA AND LAT)\nINDICATION: ___ y/o with SOB.\nCOMPARISON: ___.\n",
            "EXAMINATION: CHEST PORTABLE\nINDICATION: ___ year old man, r/o PTX.\n")
NORMAL = ("no PTX.", "osseous structures are unremarkable.", "no free air under the diaphragm.")


def _chest(rng: random.Random) -> tuple[Image.Image, dict]:
    """Body, two dark lungs and the heart; returns the image and the lung boxes."""
    image = Image.new("L", (SIZE, SIZE), rng.randint(10, 25))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((8, 6, SIZE - 8, SIZE - 2), radius=18, fill=rng.randint(150, 175))
    lungs = {"right": (14, 14, 45, 84), "left": (51, 14, 82, 84)}  # the patient's right is the image's left
    for box in lungs.values():
        pen.ellipse(box, fill=rng.randint(45, 65))
    for y in range(20, 80, 9):  # ribs
        pen.arc((10, y - 6, SIZE - 10, y + 12), 200, 340, fill=rng.randint(95, 115))
    return image, lungs


def draw_radiograph(finding: str, side: str, zone: str, size_word: str, rng: random.Random) -> Image.Image:
    image, lungs = _chest(rng)
    pen = ImageDraw.Draw(image)
    heart_width = 30 if finding == "cardiomegaly" else 17
    pen.ellipse((44 - heart_width // 2, 50, 44 + heart_width, 80), fill=rng.randint(185, 205))
    x0, y0, x1, y1 = lungs[side]
    if finding == "pleural effusion":
        level = y1 - (26 if size_word == "large" else 14)
        pen.chord((x0, level - 8, x1, y1 + 6), 0, 180, fill=200)
        pen.rectangle((x0 + 2, level, x1 - 2, y1), fill=200)
    elif finding == "consolidation":
        top = y0 + 8 if zone == "upper" else y1 - 30
        pen.ellipse((x0 + 6, top, x1 - 6, top + 20), fill=195)
    elif finding == "atelectasis":
        pen.polygon([(x0 + 3, y1 - 24), (x1 - 3, y1 - 30), (x1 - 3, y1 - 22), (x0 + 3, y1 - 16)], fill=185)
        pen.rectangle((x0, y1 - 12, x1, y1), fill=160)
    elif finding == "edema":
        for box in lungs.values():
            pen.ellipse(box, fill=110)
        pen.ellipse((30, 30, 66, 60), fill=150)
    blurred = image.filter(ImageFilter.GaussianBlur(1.2))
    grain = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, (SIZE, SIZE))
    noise = np.asarray(blurred, dtype=np.float64) + grain
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), mode="L")


def write_report(finding: str, side: str, zone: str, size_word: str, rng: random.Random) -> str:
    values = {"side": side, "zone": zone, "size": size_word, "abbr": {"left": "L", "right": "R"}[side]}
    findings = [rng.choice(FINDING_TEXT[finding]).format(**values), *rng.sample(NORMAL, rng.randint(1, 2))]
    text = (f"{rng.choice(PREAMBLE)}\nFINDINGS: {' '.join(findings)}\n\n"
            f"IMPRESSION: {IMPRESSION[finding].format(**values)} Dr. ___ was notified.\n")
    return text


def _write_dicom(image: Image.Image, path: Path, uid: str) -> None:
    """16-bit MONOCHROME2 with a VOI window, as modalities write them."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid(
        entropy_srcs=[uid])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", "anonymous"
    ds.Rows, ds.Columns = image.height, image.width
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = (np.asarray(image, dtype=np.uint16) * 16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def generate_mimic(root: Path, images_per_split: dict[str, int], seed: int = 0, dicom_every: int = 4) -> Path:
    """Write the folder; returns `root` (what `read_mimic` / `alignops data import mimic-cxr` take)."""
    rng = random.Random(seed)
    metadata, splits, labels = [], [], []
    n = 0
    for split, count in images_per_split.items():
        for _ in range(count):
            finding = FINDINGS[n % len(FINDINGS)]
            side, zone, size_word = rng.choice(SIDES), rng.choice(("upper", "lower")), rng.choice(("small", "large"))
            subject, study, dicom_id = f"1{n:07d}", f"5{n:07d}", f"d{n:07d}"
            study_dir = root / "files" / f"p{subject[:2]}" / f"p{subject}"
            (study_dir / f"s{study}").mkdir(parents=True, exist_ok=True)
            (study_dir / f"s{study}.txt").write_text(write_report(finding, side, zone, size_word, rng))
            image = draw_radiograph(finding, side, zone, size_word, rng)
            if n % dicom_every == 0:
                _write_dicom(image, study_dir / f"s{study}" / f"{dicom_id}.dcm", dicom_id)
            else:
                image.save(study_dir / f"s{study}" / f"{dicom_id}.jpg", quality=95)
            metadata.append({"dicom_id": dicom_id, "subject_id": subject, "study_id": study, "ViewPosition": "PA"})
            splits.append({"dicom_id": dicom_id, "study_id": study, "subject_id": subject,
                           "split": {"val": "validate"}.get(split, split)})
            positive = CHEXPERT_COLUMNS[FINDINGS.index(finding)]
            labels.append({"subject_id": subject, "study_id": study,
                           **{column: float(column == positive) for column in CHEXPERT_COLUMNS}})
            n += 1
    pd.DataFrame(metadata).to_csv(root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    pd.DataFrame(splits).to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    pd.DataFrame(labels).to_csv(root / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    return root
