"""GPU figures in one prepared run: what a lent GPU is for, measured in one call of at most ~9 minutes.

1. peak: the device's bf16 matrix-product rate (a large square product), beside the datasheet's.
2. train: ViT-B/16 + 12-layer 512-wide text at 224 px (preset `base`), bf16, batch 256 — pairs/s, peak
   memory and MFU (123 GFLOPs per pair for forward + backward), eager and `torch.compile`, on synthetic
   tensors (compute only) and through the real loader (pre-resized WebDataset shards, decode workers), and
   the largest batch that fits.
3. fsdp: the `fsdp` strategy (FSDP2) on one GPU through `train` — a few steps, a sharded checkpoint, a resume
   to more steps; the artifact must equal the weights the last checkpoint's shards gather to.
4. serving: `bentoml serve` with `device: cuda`, `encode_text` and `encode_image` at concurrency 1/8/32,
   batching on and off: ok/s, p50/p95/p99, and the batching gain at 32.
5. numerics: served embeddings against the artifact's on the same device (fp32, at most 1e-5), and one
   training step's loss in bf16 against fp32 on the same batch.

Each part runs on its own; a part that fails is reported with its error and the rest still run. The table
goes to stdout and the figures to `$OUT/gpu_suite.json` (or `--json`). `--dry-run` runs every part at toy
sizes on the CPU (FSDP2 included, over gloo):
`tests/integration/test_gpu_suite.py` runs it, so the script cannot rot between GPU loans.

Usage: python -m benchmarks.gpu_suite [--dry-run] [--json PATH] [--parts peak,train,fsdp,serving,numerics]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

import torch

FLOPS_PER_PAIR = 123e9  # ViT-B/16 + 512-wide 12-layer text at 224 px, forward + backward
DATASHEET_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16
PARTS = ("peak", "train", "fsdp", "serving", "numerics")


@dataclass(frozen=True)
class Sizes:
    preset: str
    batch: int
    larger_batches: tuple[int, ...]  # tried after `batch`, until one does not fit
    warmup: int
    steps: int
    workers: int  # loader decode processes
    matmul: int  # side of the peak-rate product
    fsdp_steps: int
    requests: int  # per serving level, also bounded by `seconds`
    seconds: float


GPU = Sizes("base", 256, (512, 768, 1024), warmup=3, steps=15, workers=12, matmul=8192, fsdp_steps=4,
            requests=3000, seconds=6.0)
DRY = Sizes("tiny", 8, (16,), warmup=1, steps=2, workers=2, matmul=256, fsdp_steps=2, requests=12, seconds=1.0)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_memory_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_peak() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# 1. peak ---------------------------------------------------------------------------------------------------

def peak(sizes: Sizes, work: Path) -> dict:
    """TFLOP/s of an n×n product (bf16 on a GPU, fp32 on the CPU), best of 10, and the datasheet's figure."""
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    a, b = (torch.randn(sizes.matmul, sizes.matmul, device=device(), dtype=dtype) for _ in range(2))
    a @ b
    sync()
    best = float("inf")
    for _ in range(10):
        started = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - started)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    datasheet = next((v for k, v in DATASHEET_TFLOPS.items() if k in name), None)
    return {"device": name, "dtype": str(dtype), "measured_tflops": 2 * sizes.matmul ** 3 / best / 1e12,
            "datasheet_tflops": datasheet}


# 2. train --------------------------------------------------------------------------------------------------

def training_setup(sizes: Sizes, dataset: Path, compile_towers: bool):
    """The module, optimiser and tokenizer `train` would build for the preset (bf16 on a GPU)."""
    from components.config import TrainConfig
    from components.data.manifest import read_manifest
    from components.training.module import ContrastivePretraining
    from components.training.trainer import run_model_config

    torch.manual_seed(0)
    config = TrainConfig(model={"preset": sizes.preset, "compile": compile_towers},
                         data={"batch_size": sizes.batch, "num_workers": sizes.workers}, logging={"wandb": False})
    captions = read_manifest(dataset)["caption"].tolist()
    model_config, tokenizer = run_model_config(config, dataset.parent / f"tokenizer-{sizes.preset}", captions)
    module = ContrastivePretraining(model_config, config.optim, config.model)
    module.configure_model()
    module.to(device())
    optimizer = module.configure_optimizers()["optimizer"]
    return config, module, optimizer, model_config, tokenizer


def synthetic_batch(model_config, batch: int) -> dict[str, torch.Tensor]:
    """Pixels and token ids of the right shapes; every caption ends in EOS (text pooling reads it)."""
    tokens = model_config.tokenizer
    special = max(i for i in (tokens.pad_id, tokens.eos_id, tokens.sos_id) if i is not None)
    ids = torch.randint(special + 1, tokens.vocab_size, (batch, tokens.context_length))
    ids[:, -1] = tokens.eos_id
    size = model_config.vision.image_size
    return {"pixels": torch.randn(batch, 3, size, size, device=device()), "token_ids": ids.to(device()),
            "image_group": torch.arange(batch, device=device())}


def seconds_per_step(module, optimizer, batches, warmup: int, steps: int) -> float:
    """The mean step time over `steps` after `warmup` steps (compilation happens in the warm-up)."""
    autocast = torch.cuda.is_available()
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            started = time.perf_counter()
        batch = {k: v.to(device(), non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in next(batches).items()}
        with torch.autocast(device().type, dtype=torch.bfloat16, enabled=autocast):
            loss, _ = module.losses(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
    return (time.perf_counter() - started) / steps


def shards_of(sizes: Sizes, dataset: Path) -> list[str]:
    """Pre-resized shards of the train split, at least two per decode worker."""
    from components.data.manifest import read_manifest
    from components.data.shards import write_shards

    images = read_manifest(dataset).query("split == 'train'")["image_id"].nunique()
    per_shard = max(1, images // (2 * max(sizes.workers, 1)))
    return [str(p) for p in write_shards(dataset, dataset.parent / "shards", per_shard) if p.name.startswith("train")]


def rate(sizes: Sizes, batch: int, seconds: float, peak_tflops: float | None) -> dict:
    """Pairs/s, peak memory, and MFU where the FLOPs per pair are known (the `base` preset's)."""
    pairs = batch / seconds
    known = sizes.preset == "base" and peak_tflops
    return {"batch": batch, "ms_per_step": seconds * 1e3, "pairs_per_s": pairs, "peak_mib": peak_memory_mib(),
            "mfu": pairs * FLOPS_PER_PAIR / (peak_tflops * 1e12) if known else None}


def train(sizes: Sizes, work: Path, peak_tflops: float | None) -> dict:
    from components.data.datamodule import PairDataModule
    from components.data.transforms import ImageTransform

    dataset, figures = generated(sizes, work), {}
    shards = shards_of(sizes, dataset)
    for mode in ("eager", "compile"):
        fresh_peak()
        config, module, optimizer, model_config, tokenizer = training_setup(sizes, dataset, mode == "compile")
        batch = synthetic_batch(model_config, sizes.batch)
        figures[f"{mode}/compute"] = rate(sizes, sizes.batch, seconds_per_step(
            module, optimizer, repeat(batch), sizes.warmup, sizes.steps), peak_tflops)
        fresh_peak()
        data = PairDataModule(dataset, tokenizer, ImageTransform.for_model(model_config),
                              config.data.model_copy(update={"train_shards": shards}))
        data.setup()
        figures[f"{mode}/loader"] = rate(sizes, sizes.batch, seconds_per_step(
            module, optimizer, iter(data.train_dataloader()), sizes.warmup, sizes.steps), peak_tflops)
        figures[f"{mode}/loader_over_compute"] = (figures[f"{mode}/loader"]["pairs_per_s"]
                                                  / figures[f"{mode}/compute"]["pairs_per_s"])
        if mode == "eager":
            figures["largest_batch"] = largest_batch(sizes, module, optimizer, model_config, peak_tflops)
        del module, optimizer, data
    return figures


def largest_batch(sizes: Sizes, module, optimizer, model_config, peak_tflops: float | None) -> dict | None:
    """The largest of `larger_batches` that trains without running out of memory, with its rate."""
    fitted = None
    for batch in sizes.larger_batches:
        fresh_peak()
        try:
            seconds = seconds_per_step(module, optimizer, repeat(synthetic_batch(model_config, batch)), 1,
                                       max(2, sizes.steps // 3))
        except torch.OutOfMemoryError:
            optimizer.zero_grad(set_to_none=True)
            break
        fitted = rate(sizes, batch, seconds, peak_tflops)
    return fitted


def generated(sizes: Sizes, work: Path) -> Path:
    """Enough generated images at the model's input size for warm-up and measured steps of the loader."""
    from components.config import SyntheticDataConfig, preset
    from components.data.generators.synthetic import generate_dataset

    dataset = work / "data"
    if not (dataset / "manifest.parquet").exists():
        # Each decode worker batches its own shards (and drops its last partial batch): every worker gets
        # whole batches enough that all of them together outlast the warm-up and the measured steps.
        per_worker = -(-(sizes.warmup + sizes.steps) // max(sizes.workers, 1)) + 1
        images = sizes.batch * per_worker * max(sizes.workers, 1)
        generate_dataset(SyntheticDataConfig(train_images=images, val_images=4, test_images=4,
                                             image_size=preset(sizes.preset).vision.image_size), dataset)
    return dataset


# 3. fsdp ---------------------------------------------------------------------------------------------------

def fsdp(sizes: Sizes, work: Path) -> dict:
    """Half the steps, then a resume to all of them in the same run folder; the artifact against the weights
    the last (sharded) checkpoint gathers to."""
    from safetensors.torch import load_file

    from components.config import TrainConfig
    from components.data.reference import DatasetRef
    from components.models.artifact import WEIGHTS_FILE, Lineage
    from components.training.job import TrainingJob
    from components.training.sharding import checkpoint_step, whole_weights
    from components.training.trainer import train as train_run
    from components.validation.validated import ValidatedDataset

    strategy = "fsdp"
    dataset, run_dir = generated(sizes, work), work / "fsdp-run"

    def run(steps: int):
        config = TrainConfig(model={"preset": sizes.preset}, scale={"strategy": strategy},
                             data={"batch_size": min(sizes.batch, 64)},
                             optim={"max_steps": steps, "warmup_steps": 1},
                             logging={"wandb": False, "checkpoint_every_n_steps": 1, "val_every_n_steps": steps})
        job = TrainingJob(config=config, data=ValidatedDataset(dataset=DatasetRef(path=str(dataset))),
                          run_dir=str(run_dir), lineage=Lineage())
        return train_run(job)

    first = run(sizes.fsdp_steps // 2)
    resumed = run(sizes.fsdp_steps)
    artifact = resumed.artifact.save(work / "fsdp-artifact")
    saved = load_file(str(artifact / WEIGHTS_FILE))
    last = run_dir / "checkpoints" / "last.ckpt"
    gathered = whole_weights(last)
    equal = saved.keys() == gathered.keys() and all(torch.equal(saved[k], gathered[k].to(saved[k].dtype))
                                                    for k in saved)
    return {"strategy": strategy, "first_steps": sizes.fsdp_steps // 2, "resumed_from": resumed.resumed_from,
            "steps_after_resume": checkpoint_step(last), "first_resumed_from": first.resumed_from,
            "artifact_equals_checkpoint": equal, "tensors": len(saved)}


# 4. serving and 5. numerics ----------------------------------------------------------------------------------

def serving(sizes: Sizes, work: Path) -> dict:
    """Both bentos of one artifact (batching on, off) under closed-loop load, and the served embeddings of
    the batching bento against the artifact's on the same device."""
    from benchmarks.common import untrained_artifact
    from benchmarks.serving_load import LEVELS, level, options, payloads
    from components.runtime import configure_environment

    configure_environment(work / "home")
    from serving.package import build_bento, import_model
    from serving.smoke import BentoServer
    from serving.standin import as_downloaded

    artifact = untrained_artifact(work, sizes.preset)
    downloaded, provenance, trusted = as_downloaded(artifact, work / "registry")
    tag = import_model(downloaded, "alignops-gpu-suite", {}, provenance=provenance, trusted=trusted)
    served_device = "cuda" if torch.cuda.is_available() else "cpu"
    figures: dict = {"device": served_device, "levels": {}}
    for batching in (True, False):
        mode = "on" if batching else "off"
        bento = build_bento(tag, {}, options(batching, None).model_copy(update={"device": served_device}))
        with BentoServer(bento) as server:
            if batching:
                figures["numerics"] = served_against_artifact(server.url, artifact, served_device)
            for route, payload in payloads().items():
                asyncio.run(level(server.url, route, payload, 4, 16, sizes.seconds))  # warm-up
                for concurrency in LEVELS:
                    figures["levels"][f"{mode}/{route}/{concurrency}"] = asyncio.run(
                        level(server.url, route, payload, concurrency, sizes.requests, sizes.seconds))
    figures["batching_gain_at_32"] = {
        route: figures["levels"][f"on/{route}/32"]["rps"] / figures["levels"][f"off/{route}/32"]["rps"]
        for route in payloads()}
    return figures


def served_against_artifact(url: str, artifact: Path, served_device: str) -> dict:
    import bentoml
    import numpy as np

    from components.models.embedder import Embedder
    from serving.options import ServingOptions
    from serving.smoke import PROBE_TEXTS, probe_images

    reference = Embedder.load(artifact, device=ServingOptions(device=served_device).encoder_device())
    images = probe_images(artifact.parent)
    with bentoml.SyncHTTPClient(url, timeout=60) as client:
        text = np.asarray(client.encode_text(texts=PROBE_TEXTS)["embeddings"])
        image = np.asarray(client.encode_image(images=images)["embeddings"])
    return {"text_max_abs_diff": float(np.abs(text - reference.encode_texts(PROBE_TEXTS)).max()),
            "image_max_abs_diff": float(np.abs(image - reference.encode_images(images)).max())}


def numerics(sizes: Sizes, work: Path) -> dict:
    """One batch's loss in fp32 and under bf16 autocast, from the same weights."""
    _, module, _, model_config, _ = training_setup(sizes, generated(sizes, work), compile_towers=False)
    batch = synthetic_batch(model_config, min(sizes.batch, 64))
    with torch.no_grad():
        fp32 = float(module.losses(batch)[0])
        with torch.autocast(device().type, dtype=torch.bfloat16):
            bf16 = float(module.losses(batch)[0])
    return {"loss_fp32": fp32, "loss_bf16": bf16, "relative_diff": abs(bf16 - fp32) / abs(fp32)}


# the run ---------------------------------------------------------------------------------------------------

def run_parts(sizes: Sizes, parts: tuple[str, ...], work: Path) -> dict:
    results: dict = {"sizes": asdict(sizes), "parts": {}}
    peak_tflops = None
    for part in parts:
        started = time.perf_counter()
        print(f"[gpu_suite] {part} …", file=sys.stderr, flush=True)
        try:
            if part == "peak":
                found = peak(sizes, work)
                peak_tflops = found["measured_tflops"]
            elif part == "train":
                found = train(sizes, work, peak_tflops)
            else:
                found = {"fsdp": fsdp, "serving": serving, "numerics": numerics}[part](sizes, work)
            results["parts"][part] = {"ok": True, **found}
        except Exception as error:  # one part's bug must not cost the other parts' figures on a lent GPU
            results["parts"][part] = {"ok": False, "error": f"{type(error).__name__}: {error}",
                                      "trace": traceback.format_exc()[-4000:]}
        results["parts"][part]["seconds"] = time.perf_counter() - started
    return results


def report_peak(p: dict) -> None:
    print(f"{p['device']} {p['dtype']}: {p['measured_tflops']:.1f} TFLOP/s measured, datasheet "
          f"{p['datasheet_tflops'] or '-'}")


def report_train(t: dict) -> None:
    print(f"{'':22s} {'batch':>6s} {'ms/step':>9s} {'pairs/s':>9s} {'peak MiB':>9s} {'MFU':>7s}")
    for key, r in t.items():
        if isinstance(r, dict) and "pairs_per_s" in r:
            mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
            print(f"{key:22s} {r['batch']:6d} {r['ms_per_step']:9.1f} {r['pairs_per_s']:9.1f} {r['peak_mib']:9.0f} "
                  f"{mfu:>7s}")
    print(", ".join(f"loader / compute ({mode}) {t[f'{mode}/loader_over_compute']:.2f}"
                    for mode in ("eager", "compile")))


def report_fsdp(f: dict) -> None:
    print(f"{f['strategy']}: resumed from {f['resumed_from']} to step {f['steps_after_resume']}; "
          f"artifact equals checkpoint: {f['artifact_equals_checkpoint']} ({f['tensors']} tensors)")


def report_serving(s: dict) -> None:
    print(f"{s['device']:30s} {'ok/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>6s}")
    for key, r in s["levels"].items():
        print(f"{key:30s} {r['rps']:8.1f} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} {r['errors']:6d}")
    print("batching on/off at 32: " + ", ".join(f"{k} {v:.2f}x" for k, v in s["batching_gain_at_32"].items()))
    print(f"served vs artifact: {s['numerics']}")


def report_numerics(n: dict) -> None:
    print(f"loss fp32 {n['loss_fp32']:.5f}, bf16 {n['loss_bf16']:.5f} (relative {n['relative_diff']:.2e})")


REPORTERS = {"peak": report_peak, "train": report_train, "fsdp": report_fsdp, "serving": report_serving,
             "numerics": report_numerics}


def report(results: dict) -> None:
    for name, found in results["parts"].items():
        print(f"== {name} ({found['seconds']:.0f} s): {'ok' if found['ok'] else 'FAILED: ' + found['error']}")
        if found["ok"]:
            REPORTERS[name](found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="every part at toy sizes (runs on a CPU)")
    parser.add_argument("--json", type=Path, help="default: $OUT/gpu_suite.json when OUT is set")
    parser.add_argument("--parts", default=",".join(PARTS))
    args = parser.parse_args()
    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --dry-run on a CPU")
    with tempfile.TemporaryDirectory() as tmp:
        results = run_parts(DRY if args.dry_run else GPU, parts, Path(tmp))
    report(results)
    target = args.json or (Path(os.environ["OUT"]) / "gpu_suite.json" if os.environ.get("OUT") else None)
    if target:
        target.write_text(json.dumps(results, indent=2, default=str))
    sys.exit(0 if all(p["ok"] for p in results["parts"].values()) else 1)


if __name__ == "__main__":
    main()
