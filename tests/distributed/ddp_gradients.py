"""Two-process DDP, or FSDP2 (`--fsdp`: the parameters sharded by `components.training.sharding`, as `strategy:
fsdp` trains), on CPU (gloo): loss and every gradient of the dual encoder against the single-process full-batch
computation. Run as a script (by tests/integration/test_distributed.py) because DDP inside pytest's process
can hang.

    python tests/distributed/ddp_gradients.py --objective clip --out result.json --store rendezvous [--plain-gather]
        [--fsdp] [--steps N]

`--plain-gather` swaps the autograd all-gather for `dist.all_gather`, the classic bug, to show that the
comparison catches it. `--steps N` trains N - 1 steps (SGD) before the compared one, each followed by the
objective's `after_step`: an objective with state (a momentum copy, feature queues) is compared with that
state in play.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import resource
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.nn.parallel import DistributedDataParallel

from components.config import preset
from components.models.dual_encoder import DualEncoder
from components.objectives import Batch, Outputs, build_objective
from components.training.sharding import shard as shard_module

GLOBAL_BATCH, WORLD = 8, 2
# A queue smaller than two global batches: by the third step it has wrapped.
OPTIONS = {"momentum": {"queue_size": 12, "momentum": 0.9}}
STALL_S = 60  # a run takes ~10 s; past this a process is stalled, and says where (faulthandler) before it exits


class Step(nn.Module):
    """Model and objective in one module, as Lightning runs a training step inside the DDP forward."""

    def __init__(self, objective_name: str, rank: int, world_size: int):
        super().__init__()
        torch.manual_seed(0)
        config = preset("tiny")
        config.tokenizer.vocab_size = 100
        config.init_logit_bias = -5.0 if objective_name == "siglip" else None
        self.model = DualEncoder(config)
        self.objective = build_objective(objective_name, OPTIONS.get(objective_name, {}), rank, world_size,
                                         model_config=config)
        self.objective.bind(self.model)

    def forward(self, batch: Batch) -> torch.Tensor:
        encoded = self.model(batch.pixels, batch.token_ids)
        return self.objective(batch, Outputs(encoded.image_emb, encoded.text_emb, self.model.logit_scale.exp(),
                                             self.model.logit_bias, encoded.image_tokens, encoded.text_tokens,
                                             epochs=1.0))


def train(step: nn.Module, batch_of_step, steps: int) -> torch.Tensor:
    """`steps - 1` SGD steps, each told to the objective, then the loss of one more, its gradients left."""
    inner = step.module if isinstance(step, DistributedDataParallel) else step
    optimizer = torch.optim.SGD(inner.parameters(), lr=0.5)
    for number in range(steps):
        loss = step(batch_of_step(number))
        loss.backward()  # DDP, and FSDP2's reduce-scatter, average the gradients over ranks
        if number < steps - 1:
            optimizer.step()
            optimizer.zero_grad()
            inner.objective.after_step(inner.model)
    return loss


def global_batch(number: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(1 + number)
    tokens = torch.randint(4, 100, (GLOBAL_BATCH, 32), generator=generator)
    tokens[:, 12] = 3  # EOS
    persons = torch.tensor([0, 1, 0, 2, 3, 1, 4, 2])
    return Batch(torch.randn(GLOBAL_BATCH, 3, 64, 64, generator=generator), tokens, torch.arange(GLOBAL_BATCH),
                 persons)


def shard(batch: Batch, rank: int) -> Batch:
    part = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    return Batch(batch.pixels[part], batch.token_ids[part], batch.image_groups[part], batch.person_ids[part])


def plain_all_gather(x: torch.Tensor, world_size: int) -> torch.Tensor:
    if world_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.contiguous())
    parts[dist.get_rank()] = x  # the local part keeps its gradient; the others arrive as constants
    return torch.cat(parts)


def wrapped(step: Step, fsdp: bool) -> nn.Module:
    """The step as the strategy runs it: DDP around it, or its parameters sharded in place by FSDP2."""
    if not fsdp:
        return DistributedDataParallel(step, forward_sync_buffers=False)  # as `strategy: ddp` trains
    shard_module(step.model, step.objective, init_device_mesh("cpu", (WORLD,)))
    return step


def full_gradients(step: nn.Module) -> dict[str, torch.Tensor]:
    """Every gradient whole: a shard's is gathered (a collective, so every rank calls this, in one order)."""
    inner = step.module if isinstance(step, DistributedDataParallel) else step
    return {name: p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            for name, p in inner.named_parameters() if p.grad is not None}


def local_bytes(step: nn.Module) -> int:
    """What this rank holds of the weights and their gradients: its shards under FSDP2, everything under DDP."""
    def size(tensor: torch.Tensor) -> int:
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        return local.numel() * local.element_size()

    return sum(size(p) + (size(p.grad) if p.grad is not None else 0) for p in step.parameters())


def worker(rank: int, objective_name: str, store: str, out: str, plain_gather: bool, fsdp: bool, steps: int) -> None:
    faulthandler.dump_traceback_later(STALL_S, exit=True)
    # A file store: no rank hosts the rendezvous, so neither waits on the other's store at teardown.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=STALL_S))
    torch.set_num_threads(1)
    if plain_gather:
        module = __import__(f"components.objectives.{objective_name}", fromlist=["gather_with_grad"])
        module.gather_with_grad = plain_all_gather
    step = wrapped(Step(objective_name, rank, WORLD), fsdp)
    loss = train(step, lambda number: shard(global_batch(number), rank), steps)
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    held = local_bytes(step)
    gathered = full_gradients(step)
    if rank == 0:
        reference = Step(objective_name, 0, 1)
        single = train(reference, global_batch, steps).detach()
        differences = {name: float((gathered[name] - p.grad).abs().max())
                       for name, p in reference.named_parameters() if p.grad is not None}
        worst = max(differences, key=differences.get)
        with open(out, "w") as f:
            json.dump({"rank_bytes": held, "full_bytes": local_bytes(reference),
                       "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                       "ddp_loss": float(mean_loss) / WORLD, "single_loss": float(single), "parameters":
                       len(differences), "max_grad_difference": differences[worst], "worst_parameter": worst,
                       "logit_scale_grad": [float(gathered["model.logit_scale"]),
                                            float(reference.model.logit_scale.grad)],
                       "logit_bias_grad": [float(gathered["model.logit_bias"]),
                                           float(reference.model.logit_bias.grad)]
                       if reference.model.logit_bias is not None else None}, f)
    dist.barrier()  # leave together: a rank tearing down while the other still works can stall the group
    # Exit without running destructors. In CI's sandbox a rank stalled after `worker` had returned, while
    # its locals (DDP's reducer and the gloo group it holds) were freed once the other rank had gone
    # (faulthandler's stack: `fn(i, *args)` in torch's spawn wrapper, nothing above it).
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objective", default="clip")
    parser.add_argument("--out", required=True)
    parser.add_argument("--store", required=True, help="a file path that does not exist yet (the rendezvous)")
    parser.add_argument("--plain-gather", action="store_true")
    parser.add_argument("--fsdp", action="store_true", help="shard with FSDP2 instead of DDP")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    faulthandler.dump_traceback_later(STALL_S + 30, exit=True)
    mp.spawn(worker, args=(args.objective, args.store, args.out, args.plain_gather, args.fsdp, args.steps),
             nprocs=WORLD, join=True)


if __name__ == "__main__":
    main()
