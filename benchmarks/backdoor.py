"""A planted backdoor and the CleanCLIP defence, measured on generated data.

A share of the train rows is poisoned (`components.backdoor.poison`: a noise patch in the corner, the target
caption); the model pretrained on them obeys the trigger: its attack success rate (ASR, the share of
triggered held-out images whose best caption is the target) is high. Finetuned with `cleanclip` on the clean
rows, the ASR falls while clean top-1 stays close. A plain `clip` finetune on the same rows, the same steps,
is the control: is it the objective, or only more clean training?

Ends with one line: `ASR before A after B; clean before C after D` (after: the cleanclip finetune).
`--pretrain-objective cleanclip` measures the known limit: the backdoor planted while pretraining with the
contrastive and self-supervised losses together.

Usage: python -m benchmarks.backdoor [--train-images 1000] [--fraction 0.01] [--steps 400]
       [--finetune-steps 150] [--pretrain-objective clip|cleanclip]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.compatibility import train_model
from components.backdoor.poison import poison_dataset
from components.backdoor.trigger import BackdoorProbe, Trigger
from components.config import ObjectiveSpec, SyntheticDataConfig
from components.data.generators.synthetic import generate_dataset
from components.evaluation.backdoor import BackdoorMeasurement, measure_backdoor
from components.models.embedder import Embedder

TARGET = "a photo of a banana"


def measured(model: Path, clean: Path, trigger: Trigger) -> BackdoorMeasurement:
    return measure_backdoor(Embedder.load(model), clean, BackdoorProbe(trigger=trigger, target=TARGET))


def attack_and_defend(root: Path, train_images: int, fraction: float, steps: int, finetune_steps: int,
                      finetunes: tuple[str, ...] = ("cleanclip", "clip"),
                      pretrain_objective: str = "clip") -> dict[str, BackdoorMeasurement]:
    """Poison, pretrain (with `pretrain_objective`), finetune on the clean rows with each objective of
    `finetunes`; the measurements of the pretrained model (`poisoned`) and of each finetune, on the clean
    held-out split."""
    trigger, clean = Trigger(), root / "clean"
    generate_dataset(SyntheticDataConfig(train_images=train_images, test_images=100), clean)
    poison_dataset(clean, root / "poisoned", trigger, TARGET, fraction=fraction)
    backdoored = train_model(root / "poisoned", root / "pretrain", steps, seed=0,
                             objectives=[ObjectiveSpec(name=pretrain_objective)])
    finetuned = {name: train_model(clean, root / name, finetune_steps, seed=0, init_from=backdoored,
                                   objectives=[ObjectiveSpec(name=name)]) for name in finetunes}
    return {"poisoned": measured(backdoored, clean, trigger)} | {
        name: measured(model, clean, trigger) for name, model in finetuned.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.01, help="share of the train rows poisoned")
    parser.add_argument("--steps", type=int, default=400, help="pretraining steps on the poisoned data")
    parser.add_argument("--finetune-steps", type=int, default=150, help="steps of each finetune on clean rows")
    parser.add_argument("--pretrain-objective", default="clip", help="cleanclip: the known limit, a backdoor "
                                                                     "planted under contrastive + self-supervised "
                                                                     "pretraining")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        after = attack_and_defend(Path(tmp), args.train_images, args.fraction, args.steps, args.finetune_steps,
                                  pretrain_objective=args.pretrain_objective)
    before = after["poisoned"]
    print(f"{args.fraction:.1%} of the train rows poisoned; pretrained with {args.pretrain_objective}; "
          f"{before.images} held-out images, {before.mode}; trigger {Trigger().model_dump_json()}, target {TARGET!r}")
    print(f"{'model':34s} {'ASR':>6s} {'clean top-1':>12s}")
    for label, m in (("pretrained on poisoned data", before), (f"+ cleanclip finetune ({args.finetune_steps})",
                                                              after["cleanclip"]),
                     (f"+ clip finetune ({args.finetune_steps}), control", after["clip"])):
        print(f"{label:34s} {m.asr:6.3f} {m.clean_top1:12.3f}")
    print(f"ASR before {before.asr:.3f} after {after['cleanclip'].asr:.3f}; clean before {before.clean_top1:.3f} "
          f"after {after['cleanclip'].clean_top1:.3f}")


if __name__ == "__main__":
    main()
