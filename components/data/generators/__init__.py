"""Data generators, written by hand: the general captioned-shapes set (`synthetic`), and domain data in the
formats users have (MIMIC-CXR CSVs with DICOM, Karpathy JSON, CUHK-PEDES JSON), so domain finetuning runs
offline. Captions describe what is drawn, so they can be
learnt from the pixels."""

from pathlib import Path

import pandas as pd

from components.data.generators.aerial import generate_karpathy
from components.data.generators.pedestrians import generate_pedes
from components.data.generators.radiographs import generate_mimic
from components.data.readers import import_dataset, read_source

SPLIT_SIZES = {"train": 0.8, "val": 0.1, "test": 0.1}


def generate_domain_dataset(domain: str, dest: Path, images: int = 600, seed: int = 0) -> pd.DataFrame:
    """Write `images` of a domain in its native format under `dest/source`, then import them through the
    domain's reader into the dataset directory `dest/dataset` (as a user's import would)."""
    source = Path(dest) / "source"
    counts = {split: max(1, round(images * share)) for split, share in SPLIT_SIZES.items()}
    if domain == "medical":
        frame = read_source("mimic-cxr", generate_mimic(source, counts, seed))
    elif domain == "remote_sensing":
        frame = read_source("karpathy", generate_karpathy(source, counts, seed))
    elif domain == "person":
        per_identity = 4
        identities = {split: max(2, n // per_identity) for split, n in counts.items()}
        frame = read_source("cuhk-pedes", generate_pedes(source, identities, per_identity, seed))
    else:
        raise ValueError(f"no generator for domain {domain!r}")
    return import_dataset(frame, Path(dest) / "dataset").manifest
