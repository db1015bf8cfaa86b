"""Karpathy-split JSON (Flickr30k, COCO-Karpathy, RSICD, RSITMD, UCM): `images[].filename, split,
sentences[].raw`; `restval` counts as train."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.readers.jsonfile import load_json

SPLIT_NAMES = {"train": "train", "restval": "train", "val": "val", "test": "test"}


def read_karpathy(annotations: Path, image_root: Path) -> pd.DataFrame:
    data = load_json(annotations)
    source = data.get("dataset", Path(annotations).stem)
    rows = []
    for n, image in enumerate(data["images"]):
        relative = Path(image.get("filepath", "")) / image["filename"]
        image_id = f"{source}-{image.get('imgid', n)}"
        for k, sentence in enumerate(image["sentences"]):
            rows.append({"sample_id": f"{image_id}-{sentence.get('sentid', k)}",
                         "image": str(Path(image_root) / relative), "caption": sentence.get("raw"),
                         "image_id": image_id,
                         "split": SPLIT_NAMES.get(image.get("split"), image.get("split")), "source": source})
    return pd.DataFrame(rows)
