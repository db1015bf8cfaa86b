"""A planted backdoor and the CleanCLIP defence, measured on generated data.

A share of the train rows is poisoned (`components.backdoor.poison`: a noise patch in the corner, the target
caption); the model pretrained on them obeys the trigger: its attack success rate (ASR, the share of
triggered held-out images whose best caption is the target) is high. Finetuned with `cleanclip` on the clean
rows, the ASR falls while clean top-1 stays close. A plain `clip` finetune on the same rows, the same steps,
is the control: is it the objective, or only more clean training?

Ends with one line: `ASR before A after B; clean before C after D` (after: the cleanclip finetune).
Usage: python -m benchmarks.backdoor [--train-images 1000] [--fraction 0.01] [--steps 400]
       [--finetune-steps 150]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.compatibility import train_model
from components.backdoor.poison import poison_dataset
from components.backdoor.success import BackdoorMeasurement, measure_backdoor
from components.backdoor.trigger import Trigger
from components.config import ObjectiveSpec, SyntheticDataConfig
from components.data.generators.synthetic import generate_dataset
from components.models.embedder import Embedder

TARGET = "a photo of a banana"


def measured(model: Path, clean: Path, trigger: Trigger) -> BackdoorMeasurement:
    return measure_backdoor(Embedder.load(model), clean, trigger, TARGET)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--fraction", type=float, default=0.01, help="share of the train rows poisoned")
    parser.add_argument("--steps", type=int, default=400, help="pretraining steps on the poisoned data")
    parser.add_argument("--finetune-steps", type=int, default=150, help="steps of each finetune on clean rows")
    args = parser.parse_args()
    trigger = Trigger()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clean = root / "clean"
        generate_dataset(SyntheticDataConfig(train_images=args.train_images, test_images=100), clean)
        poisoned = poison_dataset(clean, root / "poisoned", trigger, TARGET, args.fraction)
        backdoored = train_model(root / "poisoned", root / "pretrain", args.steps, seed=0)
        finetuned = {name: train_model(clean, root / name, args.finetune_steps, seed=0, init_from=backdoored,
                                       objectives=[ObjectiveSpec(name=name)]) for name in ("cleanclip", "clip")}
        before = measured(backdoored, clean, trigger)
        after = {name: measured(model, clean, trigger) for name, model in finetuned.items()}

    print(f"{len(poisoned)} of the train rows poisoned ({args.fraction:.1%}); {before.images} held-out images, "
          f"{before.mode}; trigger {trigger.model_dump_json()}, target {TARGET!r}")
    print(f"{'model':34s} {'ASR':>6s} {'clean top-1':>12s}")
    for label, m in (("pretrained on poisoned data", before), (f"+ cleanclip finetune ({args.finetune_steps})",
                                                              after["cleanclip"]),
                     (f"+ clip finetune ({args.finetune_steps}), control", after["clip"])):
        print(f"{label:34s} {m.asr:6.3f} {m.clean_top1:12.3f}")
    print(f"ASR before {before.asr:.3f} after {after['cleanclip'].asr:.3f}; clean before {before.clean_top1:.3f} "
          f"after {after['cleanclip'].clean_top1:.3f}")


if __name__ == "__main__":
    main()
