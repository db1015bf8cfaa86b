"""Text-based person search: CUHK-PEDES / ICFG-PEDES (`split, id, file_path, captions[]`) and RSTPReid
(`img_path`). The identity becomes `person_id`; every caption is a row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.readers.jsonfile import load_json

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validate": "val", "test": "test"}


def read_pedes(annotations: Path, image_root: Path, source: str = "pedes") -> pd.DataFrame:
    records = load_json(annotations)
    rows = []
    for n, record in enumerate(records):
        relative = record.get("file_path") or record.get("img_path")
        image_id = f"{source}-{relative}"
        for k, caption in enumerate(record.get("captions", [])):
            rows.append({"sample_id": f"{source}-{n}-{k}", "image": str(Path(image_root) / relative),
                         "caption": caption, "image_id": image_id,
                         "split": SPLIT_NAMES.get(record.get("split"), record.get("split")),
                         "person_id": str(record["id"]), "source": source})
    return pd.DataFrame(rows)
