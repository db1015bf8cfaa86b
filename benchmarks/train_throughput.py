"""Training throughput of a preset: full steps through the data pipeline against compute-only steps.

The compute-only baseline feeds the same batch of tensors every step, so the ratio shows what image
decoding and preprocessing cost per step (1.0 means the data pipeline keeps up).
Usage: python -m benchmarks.train_throughput [--preset tiny] [--batch-size 128] [--steps 30] [--workers 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from components.config import SyntheticDataConfig, TrainConfig, preset
from components.data.datamodule import PairDataModule
from components.data.manifest import read_manifest
from components.data.synthetic import generate_dataset
from components.data.transforms import ImageTransform
from components.text.tokenizer import train_tokenizer
from components.training.module import ContrastivePretraining


def timed_steps(module: ContrastivePretraining, batches, steps: int) -> float:
    optimizer = module.configure_optimizers()["optimizer"]
    iterator = iter(batches)
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            started = time.perf_counter()
        pixels, tokens = next(iterator)
        loss = module.loss(*module.model(pixels, tokens))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = preset(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "ds"
        generate_dataset(SyntheticDataConfig(train_images=1000, val_images=10, test_images=10,
                                             image_size=config.vision.image_size), dataset)
        tokenizer = train_tokenizer(read_manifest(dataset)["caption"], config.tokenizer)
        config.tokenizer.vocab_size = tokenizer.vocab_size
        data = PairDataModule(str(dataset), tokenizer,
                              ImageTransform(config.vision.image_size, config.image_mean, config.image_std),
                              args.batch_size, args.workers)
        data.setup()
        module = ContrastivePretraining(config.model_dump(mode="json"), **TrainConfig().model_dump(
            include={"learning_rate", "weight_decay", "warmup_steps"}), max_steps=1000)
        loader = DataLoader(data.train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                            num_workers=args.workers)
        fixed = next(iter(loader))
        compute = timed_steps(module, iter(lambda: fixed, None), args.steps)
        full = timed_steps(module, (b for _ in range(100) for b in loader), args.steps)
    print(f"preset {args.preset}, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.workers} loader workers, device cpu")
    print(f"  compute only   {compute * 1000:7.1f} ms/step  {args.batch_size / compute:8.0f} pairs/s")
    print(f"  with data      {full * 1000:7.1f} ms/step  {args.batch_size / full:8.0f} pairs/s")
    print(f"  data pipeline overhead: {full / compute:.2f}x the compute-only step time")


if __name__ == "__main__":
    main()
