"""Training throughput: the Lightning path (what `train` runs) against a plain PyTorch loop on the same
model, objectives, data loader and batch, side by side in one run.

Each variant runs in its own child process (so peak memory is its own), the two alternate `--rounds`
times, and the median step time of each is reported with their ratio. On CUDA the report adds MFU from
`--flops-per-pair` (ViT-B/16 at 224 px: ~123 GFLOPs per pair for forward + backward) and `--peak-tflops`
(H100 dense bf16: 989).

Usage: python -m benchmarks.train_throughput [--preset tiny] [--batch-size 128] [--steps 30] [--workers 0]
       [--rounds 3] [--precision auto] [--compile]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

WARMUP = 3


def _setup(args: argparse.Namespace, dataset: Path):
    """The module and loader `train` would build for this preset and batch."""
    from components.config import TrainConfig
    from components.data.datamodule import PairDataModule
    from components.data.manifest import read_manifest
    from components.data.transforms import ImageTransform
    from components.training.module import ContrastivePretraining
    from components.training.trainer import run_model_config

    torch.manual_seed(0)
    config = TrainConfig(model={"preset": args.preset, "compile": args.compile},
                         data={"batch_size": args.batch_size, "num_workers": args.workers},
                         optim={"max_steps": args.steps + WARMUP, "precision": args.precision},
                         logging={"wandb": False})
    train_rows = read_manifest(dataset).query("split == 'train'")
    model_config, tokenizer = run_model_config(config, dataset.parent / f"tok-{args.preset}",
                                               train_rows["caption"].tolist())
    transform = ImageTransform.for_model(model_config)
    data = PairDataModule(dataset, tokenizer, transform, config.data)
    data.setup()
    module = ContrastivePretraining(model_config, config.optim, config.model)
    return config, module, data


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def plain_loop(args: argparse.Namespace, dataset: Path) -> float:
    from components.training.trainer import _precision

    config, module, data = _setup(args, dataset)
    device = _device()
    module.configure_model()
    module.to(device)
    optimizers = module.configure_optimizers()
    optimizer, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    autocast = _precision(config.optim) == "bf16-mixed"
    batches = iter(data.train_dataloader())
    for step in range(config.optim.max_steps):
        if step == WARMUP:
            _sync()
            started = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in next(batches).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, _ = module.losses(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        module.model.clamp_logit_scale()
    _sync()
    return (time.perf_counter() - started) / args.steps


def lightning_loop(args: argparse.Namespace, dataset: Path) -> float:
    from components.training.trainer import _precision

    config, module, data = _setup(args, dataset)
    timer = StepTimer()
    trainer = L.Trainer(max_steps=config.optim.max_steps, accelerator="auto", devices=1,
                        precision=_precision(config.optim),
                        logger=False, enable_checkpointing=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    trainer.fit(module, datamodule=data)
    return timer.seconds / args.steps



def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """From the start of the first measured step to the end of training (the plain loop's span)."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == WARMUP and not hasattr(self, "started"):
            _sync()
            self.started = time.perf_counter()

    def on_train_end(self, trainer, module):
        _sync()
        self.seconds = time.perf_counter() - self.started


def _child(variant: str, args: argparse.Namespace, dataset: Path, results) -> None:
    torch.set_num_threads(args.threads)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    seconds = {"plain": plain_loop, "lightning": lightning_loop}[variant](args, dataset)
    peak = (torch.cuda.max_memory_allocated() if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    results.put((variant, seconds, peak))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--flops-per-pair", type=float, default=123e9)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    from components.config import SyntheticDataConfig, preset
    from components.data.generators.synthetic import generate_dataset

    context = mp.get_context("spawn")
    timings: dict[str, list[tuple[float, int]]] = {"plain": [], "lightning": []}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "ds"
        generate_dataset(SyntheticDataConfig(train_images=args.images, val_images=10, test_images=10,
                                             image_size=preset(args.preset).vision.image_size), dataset)
        for _ in range(args.rounds):
            for variant in ("plain", "lightning"):
                results = context.Queue()
                child = context.Process(target=_child, args=(variant, args, dataset, results))
                child.start()
                name, seconds, peak = results.get()
                child.join()
                timings[name].append((seconds, peak))
    report(args, timings)


def report(args: argparse.Namespace, timings: dict[str, list[tuple[float, int]]]) -> None:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu, {args.threads} threads"
    print(f"preset {args.preset}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds, "
          f"{args.workers} loader workers, precision {args.precision}, compile {args.compile}, {device}")
    medians = {}
    for name, runs in timings.items():
        medians[name] = statistics.median(s for s, _ in runs)
        peak = max(p for _, p in runs) / 2 ** 20
        line = (f"  {name:<10} {medians[name] * 1000:8.1f} ms/step  {args.batch_size / medians[name]:9.1f} pairs/s  "
                f"peak {'GPU' if torch.cuda.is_available() else 'RSS'} {peak:8.0f} MiB")
        if torch.cuda.is_available():
            mfu = args.batch_size / medians[name] * args.flops_per_pair / (args.peak_tflops * 1e12)
            line += f"  MFU {mfu:.1%}"
        print(line)
    print(f"  Lightning / plain throughput: {medians['plain'] / medians['lightning']:.3f}")


if __name__ == "__main__":
    main()
