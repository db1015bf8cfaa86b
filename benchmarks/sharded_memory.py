"""Memory per rank under FSDP2 against DDP, side by side in one run: two gloo ranks on CPU train the same dual
encoder (preset `small` by default: ViT-S/16 and a 6-layer 384-wide text tower, 224 px) for a few AdamW steps
with the `clip` objective, sharded as `strategy: fsdp` shards it (`components.training.sharding`) or wrapped in
DDP. Each rank reports what it holds of the weights, gradients and optimizer state, and its peak resident
memory; each variant runs in fresh processes.

Usage: python -m benchmarks.sharded_memory [--preset small] [--batch 8] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

WORLD = 2


def held_bytes(module, optimizer) -> int:
    """This rank's share of the weights, gradients and optimizer state (a shard's local part under FSDP2)."""
    import torch

    def size(tensor: torch.Tensor) -> int:
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        return local.numel() * local.element_size()

    tensors = [p for p in module.parameters()] + [p.grad for p in module.parameters() if p.grad is not None]
    tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v) and v.ndim]
    return sum(size(t) for t in tensors)


def rank(index: int, variant: str, args: argparse.Namespace, store: str, out: str) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.nn.parallel import DistributedDataParallel

    from components.config import preset
    from components.models.dual_encoder import DualEncoder
    from components.objectives import Batch, Outputs, build_objective
    from components.training.sharding import shard

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=index, world_size=WORLD)
    torch.manual_seed(0)
    config = preset(args.preset)
    model, objective = DualEncoder(config, load_pretrained=False), build_objective("clip", {}, index, WORLD,
                                                                                   model_config=config)
    forward = model
    if variant == "fsdp":
        shard(model, objective, init_device_mesh("cpu", (WORLD,)))
    else:
        forward = DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = config.vision.image_size
    for step in range(args.steps):
        generator = torch.Generator().manual_seed(step * WORLD + index)
        pixels = torch.randn(args.batch, 3, size, size, generator=generator)
        tokens = torch.randint(4, config.tokenizer.vocab_size, (args.batch, 32), generator=generator)
        encoded = forward(pixels, tokens)
        loss = objective(Batch(pixels, tokens, torch.arange(args.batch) + index * args.batch),
                         Outputs(encoded.image_emb, encoded.text_emb, model.logit_scale.exp(), model.logit_bias,
                                 encoded.image_tokens, encoded.text_tokens))
        loss.backward()
        optimizer.step()
        if step < args.steps - 1:
            optimizer.zero_grad(set_to_none=False)
    figures = {"held": held_bytes(model, optimizer), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
               * 1024, "parameters": sum(p.numel() for p in model.parameters())}
    Path(f"{out}.{index}").write_text(json.dumps(figures))
    dist.barrier()
    os._exit(0)  # no teardown: see tests/distributed/ddp_gradients.py


def run(variant: str, args: argparse.Namespace, folder: Path) -> list[dict]:
    import torch.multiprocessing as mp

    out = folder / variant
    mp.spawn(rank, args=(variant, args, str(folder / f"{variant}-store"), str(out)), nprocs=WORLD, join=True)
    return [json.loads(Path(f"{out}.{index}").read_text()) for index in range(WORLD)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=8, help="pairs per rank and step")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        results = {variant: run(variant, args, Path(tmp)) for variant in ("ddp", "fsdp")}
    mib = 2 ** 20
    for variant, ranks in results.items():
        print(f"{variant}: {ranks[0]['parameters'] / 1e6:.1f}M parameters; per rank held "
              + ", ".join(f"{r['held'] / mib:.0f} MiB" for r in ranks) + "; peak RSS "
              + ", ".join(f"{r['peak_rss'] / mib:.0f} MiB" for r in ranks), file=sys.stderr)
    held = max(r["held"] for r in results["fsdp"]) / max(r["held"] for r in results["ddp"])
    peak = max(r["peak_rss"] for r in results["fsdp"]) / max(r["peak_rss"] for r in results["ddp"])
    print(f"fsdp/ddp per rank: held {held:.2f}x; peak RSS {peak:.2f}x "
          f"({max(r['peak_rss'] for r in results['fsdp']) / mib:.0f} vs "
          f"{max(r['peak_rss'] for r in results['ddp']) / mib:.0f} MiB)")


if __name__ == "__main__":
    main()
