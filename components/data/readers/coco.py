"""COCO captions JSON (`images`, `annotations`, `licenses`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.manifest import ManifestError
from components.data.readers.jsonfile import load_json


def read_coco_captions(annotations: Path, image_root: Path) -> pd.DataFrame:
    data = load_json(annotations)
    licenses = {lic["id"]: lic.get("name", str(lic["id"])) for lic in data.get("licenses", [])}
    images = {img["id"]: img for img in data["images"]}
    rows = []
    for ann in data["annotations"]:
        img = images.get(ann["image_id"])
        if img is None:
            raise ManifestError(f"{annotations}: annotation {ann.get('id')} names unknown image {ann['image_id']}")
        rows.append({"sample_id": f"coco-{ann['id']}", "image": str(Path(image_root) / img["file_name"]),
                     "caption": ann["caption"], "image_id": f"coco-{img['id']}", "source": "coco",
                     "license": licenses.get(img.get("license"), "unknown")})
    return pd.DataFrame(rows)
