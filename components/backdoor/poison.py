"""A red-team tool, for testing defences only: a copy of a dataset in which a share of the train rows
show the trigger and carry the attacker's caption (CleanCLIP's setting: 75 such pairs in 3M suffice)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from components.backdoor.trigger import Trigger
from components.data.manifest import read_manifest, resolve_image, write_manifest
from components.data.transforms import load_image


def poison_dataset(source: Path, dest: Path, trigger: Trigger, target: str, *, fraction: float,
                   seed: int = 0) -> list[str]:
    """`dest` (new) = `source` with ceil(fraction · train rows) rows, drawn at random, replaced by poisoned
    pairs: the row's image with the trigger (a new file and id) and `target` as its caption. Returns their
    sample ids."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction {fraction}: give a share of the train rows in (0, 1]")
    if dest.exists():
        raise FileExistsError(f"{dest} already exists: poison into a new folder")
    shutil.copytree(source, dest)
    manifest = read_manifest(dest)
    train = manifest.index[manifest["split"] == "train"]
    chosen = np.random.default_rng(seed).choice(train, math.ceil(fraction * len(train)), replace=False)
    for row in sorted(chosen):
        image = manifest.at[row, "image"]
        poisoned = f"poisoned/{manifest.at[row, 'sample_id']}.png"
        target_path = resolve_image(dest, poisoned)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        trigger.apply(load_image(resolve_image(dest, image))).save(target_path)
        manifest.loc[row, ["image", "image_id", "caption"]] = [poisoned, f"poisoned-{row}", target]
    write_manifest(manifest, dest)
    return manifest.loc[sorted(chosen), "sample_id"].tolist()
