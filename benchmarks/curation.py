"""Curation pays: on generated data with injected noise, a model trained on the curated version beats one
trained on the raw version, the same steps, batch and seed, measured on the clean held-out split.

Noise: a share of the train images swap their captions among themselves (mismatched pairs, as alt-text
scraped beside the wrong picture), and a share are copied under new ids (the same bytes and captions:
duplicates that over-weight them). The raw model scores the pairs (a bootstrapped CLIP-score filter: a model
trained on noisy pairs still ranks matching pairs above swapped ones); curation keeps the best-scored
fraction and drops the duplicates.

Ends with one line: `raw R@1 A; curated R@1 B` (held-out text->image R@1).
Usage: python -m benchmarks.curation [--steps 300] [--train-images 1000] [--swapped 0.3] [--copied 0.2]
       [--keep 0.7]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.compatibility import train_model
from components.config import SyntheticDataConfig
from components.curation.curate import curate_dataset, write_curated
from components.curation.rules import CurationRules
from components.data.generators.synthetic import generate_dataset
from components.data.manifest import read_manifest, write_manifest
from components.evaluation.suites import EvalTarget
from components.models.embedder import Embedder


def with_noise(clean: Path, noisy: Path, swapped: float, copied: float, seed: int = 0) -> set[str]:
    """A copy of `clean` whose train split has swapped captions and copied images; returns the sample ids
    of the swapped (mismatched) rows."""
    shutil.copytree(clean, noisy)
    rng = np.random.default_rng(seed)
    manifest = read_manifest(noisy)
    train_ids = manifest.loc[manifest["split"] == "train", "image_id"].unique()
    chosen = rng.choice(train_ids, int(swapped * len(train_ids)), replace=False)
    donors = dict(zip(chosen, np.roll(chosen, 1), strict=True))  # each chosen image takes the next one's captions
    captions = {image_id: group["caption"].tolist() for image_id, group in manifest.groupby("image_id")}
    for image_id, donor in donors.items():
        rows = manifest.index[manifest["image_id"] == image_id]
        manifest.loc[rows, "caption"] = (captions[donor] * len(rows))[:len(rows)]
    copies = []
    for image_id in rng.choice(train_ids, int(copied * len(train_ids)), replace=False):
        rows = manifest[manifest["image_id"] == image_id]
        image = rows["image"].iloc[0]
        target = f"{Path(image).with_suffix('')}-copy{Path(image).suffix}"
        shutil.copyfile(noisy / image, noisy / target)
        copies.append(rows.assign(image=target, image_id=f"{image_id}-copy",
                                  sample_id=rows["sample_id"] + "-copy"))
    noisy_manifest = pd.concat([manifest, *copies], ignore_index=True)
    write_manifest(noisy_manifest, noisy)
    return set(noisy_manifest.loc[noisy_manifest["image_id"].str.removesuffix("-copy").isin(chosen), "sample_id"])


def held_out_r1(model: Path, clean: Path) -> float:
    return EvalTarget(name="held_out", dataset_dir=str(clean), split="test").measure(
        Embedder.load(model)).metrics["held_out/t2i_r1"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--swapped", type=float, default=0.3, help="share of train images with swapped captions")
    parser.add_argument("--copied", type=float, default=0.2, help="share of train images copied once more")
    parser.add_argument("--keep", type=float, default=0.7, help="share of train rows curation keeps by score")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clean = root / "clean"
        generate_dataset(SyntheticDataConfig(train_images=args.train_images, test_images=100), clean)
        mismatched = with_noise(clean, root / "raw", args.swapped, args.copied)
        raw = train_model(root / "raw", root / "raw-run", args.steps, seed=0)
        result = curate_dataset(root / "raw", Embedder.load(raw), CurationRules(keep_fraction=args.keep, dedup=True))
        write_curated(root / "raw", result, root / "curated")
        curated = train_model(root / "curated", root / "curated-run", args.steps, seed=0)
        before, after = held_out_r1(raw, clean), held_out_r1(curated, clean)

    rows = result.rows[result.rows["split"] == "train"]
    dropped = rows[rows["rule"] != ""]
    caught = dropped["sample_id"].isin(mismatched).sum()
    print(f"train rows {len(rows)}: {len(mismatched)} with swapped captions, "
          f"{rows['sample_id'].str.endswith('-copy').sum()} copies")
    print("dropped per rule: " + ", ".join(f"{rule} {n}" for rule, n in result.counts.items() if n))
    print(f"swapped rows dropped {caught}/{len(mismatched)} ({caught / len(mismatched):.0%}); matching rows "
          f"dropped by score {(dropped['rule'].eq('low_score') & ~dropped['sample_id'].isin(mismatched)).sum()}")
    print(f"raw R@1 {before:.3f}; curated R@1 {after:.3f}")


if __name__ == "__main__":
    main()
