"""Continual training methods side by side: what a model remembers after a stream of updates.

A 5-phase stream of generated data whose phases show different things (drawn shapes, aerial tiles,
pedestrians, chest X-rays, shapes again), learnt by the real `continual` flow from one base (a tiny model
pretrained on other generated shapes, as a team starts from a pretrained checkpoint), the same steps and
learning rate per phase for every method. Reported per method: average forgetting and backward
transfer (from the retention matrix), the final mean R@1 over all five test sets, and wall time. Then the
same stream at batch 16 with the plain CLIP loss against ALBEF's momentum distillation (its queue gives each
row hundreds of negatives where the batch has 16).

Usage: python -m benchmarks.continual [--steps 60] [--batch-size 32] [--images 300] [--base-steps 300] [--out DIR]
Last line: forgetting finetune A; wiseft B; modx C; lora D | batch16 clip R@1 E; momentum F
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

PHASES = (("shapes", 3), ("remote_sensing", 3), ("person", 3), ("medical", 3), ("shapes", 4))


def generate_stream(root: Path, images: int) -> list[Path]:
    from components.config import SyntheticDataConfig
    from components.data.generators import generate_domain_dataset
    from components.data.generators.synthetic import generate_dataset

    phases = []
    for number, (kind, seed) in enumerate(PHASES, start=1):
        folder = root / f"phase{number}-{kind}"
        if kind == "shapes":
            test = max(8, images // 6)
            generate_dataset(SyntheticDataConfig(seed=seed, train_images=images - 2 * test, val_images=test,
                                                 test_images=test), folder)
            phases.append(folder)
        else:  # the dataset folder named after its phase: the retention table and heat map show the name
            generate_domain_dataset(kind, root / "source" / folder.name, images=images, seed=seed)
            (root / "source" / folder.name / "dataset").rename(folder)
            phases.append(folder)
    return phases


def register_base(root: Path, phases: list[Path], steps: int) -> str:
    """A tiny model whose tokenizer knows every phase's words, pretrained `steps` steps on shapes of another
    seed, registered as `stream-base:1`."""
    import torch

    from components.config import SyntheticDataConfig, TrainConfig, preset
    from components.data.generators.synthetic import generate_dataset
    from components.data.manifest import read_manifest
    from components.data.reference import DatasetRef
    from components.models.artifact import Lineage, ModelArtifact
    from components.models.dual_encoder import DualEncoder
    from components.text.tokenizer import train_tokenizer
    from components.training.job import TrainingJob
    from components.training.trainer import train
    from components.validation.validated import ValidatedDataset
    from flows.steps.platform import Platform

    torch.manual_seed(0)
    config = preset("tiny")
    tokenizer = train_tokenizer([c for p in phases for c in read_manifest(p)["caption"]], config.tokenizer)
    config.tokenizer.vocab_size = tokenizer.vocab_size
    untrained = ModelArtifact(DualEncoder(config).eval(), tokenizer, Lineage()).save(root / "untrained")
    generate_dataset(SyntheticDataConfig(seed=9, train_images=600, val_images=50, test_images=50), root / "general")
    recipe = TrainConfig(model={"init_from": str(untrained)}, optim={"max_steps": steps, "warmup_steps": 30},
                         data={"batch_size": 64}, logging={"checkpoint_every_n_steps": steps, "wandb": False,
                                                           "val_every_n_steps": steps})
    job = TrainingJob(config=recipe, data=ValidatedDataset(dataset=DatasetRef(path=str(root / "general"))),
                      run_dir=str(root / "base-run"), lineage=Lineage())
    artifact = train(job).artifact.save(root / "base")
    return Platform.from_env().registry().register("stream-base", artifact).ref


def run_stream(name: str, method: str, base: str, phases: list[Path], steps: int, batch_size: int) -> dict:
    from components.config import TrainConfig
    from components.data.reference import DatasetRef
    from flows.continual import ContinualConfig, continual

    train = TrainConfig(optim={"max_steps": steps, "warmup_steps": max(1, steps // 10), "learning_rate": 1e-3},
                        data={"batch_size": batch_size},
                        logging={"checkpoint_every_n_steps": steps, "val_every_n_steps": steps, "wandb": False})
    options = {"queue_size": 1024} if method == "momentum" else {}
    started = time.perf_counter()
    result = continual(ContinualConfig(name=name, base_model=base, phases=[DatasetRef(path=str(p)) for p in phases],
                                       method=method, method_options=options, train=train,
                                       gate_policy="general"))
    figures = result.retention.metrics()
    return {"method": name, "forgetting": figures["continual/average_forgetting"],
            "backward transfer": figures["continual/backward_transfer"],
            "final mean R@1": figures["continual/final_mean_r1"], "seconds": time.perf_counter() - started,
            "matrix": result.retention.matrix}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="training steps per phase, every method")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=300, help="images per phase")
    parser.add_argument("--base-steps", type=int, default=300, help="pretraining steps of the base")
    parser.add_argument("--out", type=Path, default=None, help="keep the state directory (runs, heat maps) here")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="continual-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ.update({"ALIGNOPS_HOME": str(root / "home"), "PREFECT_LOGGING_LEVEL": "WARNING",
                       "WANDB_MODE": "offline"})
    phases = generate_stream(root / "data", args.images)
    base = register_base(root, phases, args.base_steps)
    rows = [run_stream(method, method, base, phases, args.steps, args.batch_size)
            for method in ("finetune", "wiseft", "modx", "lora")]
    rows += [run_stream(f"{method}-b16", method, base, phases, args.steps, 16) for method in ("finetune", "momentum")]
    print(f"{len(PHASES)} phases ({', '.join(k for k, _ in PHASES)}), {args.steps} steps each, tiny preset, "
          f"state in {root}")
    print(f"{'method':14}{'forgetting':>12}{'backward tr.':>14}{'final R@1':>11}{'seconds':>9}  R@1 on phase 1 "
          "after each phase")
    for row in rows:
        trace = " ".join(f"{r[0]:.2f}" for r in row["matrix"])
        print(f"{row['method']:14}{row['forgetting']:>12.3f}{row['backward transfer']:>+14.3f}"
              f"{row['final mean R@1']:>11.3f}{row['seconds']:>9.0f}  {trace}")
    by = {row["method"]: row for row in rows}
    print(f"forgetting finetune {by['finetune']['forgetting']:.3f}; wiseft {by['wiseft']['forgetting']:.3f}; "
          f"modx {by['modx']['forgetting']:.3f}; lora {by['lora']['forgetting']:.3f} | batch16 clip R@1 "
          f"{by['finetune-b16']['final mean R@1']:.3f}; momentum {by['momentum-b16']['final mean R@1']:.3f}")


if __name__ == "__main__":
    main()
