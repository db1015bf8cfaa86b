"""A model upgrade without re-embedding, measured on generated data: v1 trained; v2 trained longer from another
seed without compatibility, and with `bct` against v1; a projection fitted from the plain v2 into v1's space.
Every figure is text->image R@1 on the held-out split, v2's queries searching the gallery v1 embedded.

Ends with one line: `old/old R@1 A; new/new B; new->old without C; with bct D; with projection E`, then the
re-index throughput of v2 (images/s) and the re-embedding time a 1M-image gallery would have needed.
Usage: python -m benchmarks.compatibility [--old-steps 150] [--new-steps 300] [--train-images 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from components.compat.cross_model import measure_compatibility, one_caption_per_image
from components.compat.projection import fit_projection
from components.config import ObjectiveSpec, SyntheticDataConfig, TrainConfig
from components.data.generators.synthetic import generate_dataset
from components.data.manifest import resolve_image
from components.data.reference import DatasetRef
from components.evaluation.suites import EvalTarget
from components.models.artifact import Lineage
from components.models.embedder import Embedder
from components.training.job import TrainingJob
from components.training.trainer import train
from components.validation.validated import ValidatedDataset

GALLERY = 1_000_000  # images: the gallery whose re-embedding an upgrade avoids


def train_model(dataset: Path, run_dir: Path, steps: int, seed: int, old: Path | None = None, *,
                objectives: list[ObjectiveSpec] | None = None, init_from: Path | None = None) -> Path:
    """A tiny model trained `steps` steps (batch 64) with CLIP (and `bct` against `old`), or with
    `objectives`; from scratch, or from the artifact `init_from`."""
    objectives = objectives or [ObjectiveSpec(name="clip")] + (
        [ObjectiveSpec(name="bct", options={"old": str(old)})] if old else [])
    config = TrainConfig(seed=seed, model={"init_from": str(init_from) if init_from else None},
                         optim={"max_steps": steps, "warmup_steps": 10, "objectives": objectives},
                         data={"batch_size": 64}, logging={"wandb": False, "val_every_n_steps": steps,
                                                           "checkpoint_every_n_steps": steps})
    job = TrainingJob(config=config, data=ValidatedDataset(dataset=DatasetRef(path=str(dataset))),
                      run_dir=str(run_dir), lineage=Lineage())
    return train(job).artifact.save(run_dir / "artifact")


def reindex_rate(model: Embedder, dataset: Path, target: EvalTarget) -> float:
    """Images/s of embedding the held-out images from their files, as a re-index reads them."""
    images = [resolve_image(dataset, p) for p in target.encode(model).image_paths]
    started = time.perf_counter()
    model.encode_images(images)
    return len(images) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-steps", type=int, default=150)
    parser.add_argument("--new-steps", type=int, default=300)
    parser.add_argument("--train-images", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = root / "synthetic"
        generate_dataset(SyntheticDataConfig(train_images=args.train_images, test_images=100), dataset)
        held_out = EvalTarget(name="held_out", dataset_dir=str(dataset), split="test")
        old = train_model(dataset, root / "v1", args.old_steps, seed=0)
        plain = train_model(dataset, root / "v2", args.new_steps, seed=1)
        bct = train_model(dataset, root / "v2-bct", args.new_steps, seed=1, old=old)
        v1, v2, v2_bct = (Embedder.load(path) for path in (old, plain, bct))

        train_split = EvalTarget(name="train", dataset_dir=str(dataset), split="train")
        new_train, old_train = train_split.encode(v2), train_split.encode(v1)
        projection, _ = fit_projection(new_train.text_emb.numpy(), old_train.text_emb.numpy(),
                                       pairs=one_caption_per_image(new_train, old_train))

        without = measure_compatibility(v2, v1, held_out)
        with_bct = measure_compatibility(v2_bct, v1, held_out)
        projected = measure_compatibility(v2, v1, held_out, projection)
        rate = reindex_rate(v2, dataset, held_out)

    r1 = "held_out/t2i_r1"
    print(f"{'held-out text->image R@1':34s} {'v2 plain':>9s} {'v2 + bct':>9s}")
    print(f"{'old/old (v1 queries, v1 gallery)':34s} {without.old[r1]:9.3f} {with_bct.old[r1]:9.3f}")
    print(f"{'new/new (v2 queries, v2 gallery)':34s} {without.new[r1]:9.3f} {with_bct.new[r1]:9.3f}")
    print(f"{'new->old (v2 queries, v1 gallery)':34s} {without.cross['xm/' + r1]:9.3f} "
          f"{with_bct.cross['xm/' + r1]:9.3f}   projected: {projected.cross['xm/' + r1]:.3f}  (chance 0.010)")
    print(f"old/old R@1 {without.old[r1]:.3f}; new/new {without.new[r1]:.3f}; new->old without "
          f"{without.cross['xm/' + r1]:.3f}; with bct {with_bct.cross['xm/' + r1]:.3f}; with projection "
          f"{projected.cross['xm/' + r1]:.3f}")
    hours = GALLERY / rate / 3600
    print(f"re-index throughput {rate:.0f} images/s (v2, this machine's CPU); re-embedding a {GALLERY:,}-image "
          f"gallery would take {hours:.1f} h, avoided")


if __name__ == "__main__":
    main()
