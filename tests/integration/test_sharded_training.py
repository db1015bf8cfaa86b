"""`strategy: fsdp` on two CPU ranks (gloo, torchrun): FSDP2 through Lightning's ModelParallelStrategy. A run
SIGKILLed mid-epoch resumes from its sharded checkpoint to the uninterrupted run's weights, bit for bit, and the
exported artifact holds the full weights the checkpoint's shards gather to. (Loss and gradients against one
process on the whole batch: tests/integration/test_distributed.py, the same sharding code.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from jobs import job
from safetensors.torch import load_file

from components.config import TrainConfig
from components.training.sharding import checkpoint_step, whole_weights

pytestmark = pytest.mark.slow

# 800 training pairs in global batches of 128 (64 a rank) = 6 steps an epoch; checkpoints every 4 steps: the
# first mid-epoch, the second at the end (the weights the artifact must hold).
CONFIG = TrainConfig(optim={"max_steps": 8, "warmup_steps": 2, "deterministic": True}, data={"batch_size": 64},
                     logging={"checkpoint_every_n_steps": 4, "val_every_n_steps": 50, "wandb": False},
                     scale={"strategy": "fsdp", "devices": 2, "launcher": "torchrun"})


def launch(job_file, run_dir) -> subprocess.Popen:
    """torchrun with two ranks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "components.training.launch", "--job", str(job_file), "--run-dir", str(run_dir)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=(run_dir.parent / f"{run_dir.name}.err").open(
        "ab"), env={**os.environ, "OMP_NUM_THREADS": "1"})


def kill_every_rank(process: subprocess.Popen) -> None:
    """SIGKILL to torchrun and its ranks at once (torchrun starts each rank in a session of its own, so a
    signal to its process group would leave them training on)."""
    tree = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    for pid in tree[1:]:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=30)


def finish(process: subprocess.Popen, run_dir) -> None:
    assert process.wait(timeout=600) == 0, (run_dir.parent / f"{run_dir.name}.err").read_text()[-3000:]


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_and_the_artifact_is_the_gathered_weights(
        tiny_dataset, tmp_path):
    job_file = job(CONFIG, tiny_dataset, tmp_path / "unused").write(tmp_path)
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    victim = launch(job_file, interrupted)
    last = interrupted / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not (last / "meta.pt").exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    kill_every_rank(victim)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = checkpoint_step(last)
    assert 0 < killed_at < CONFIG.optim.max_steps and killed_at % 6 != 0  # mid-epoch
    assert not (interrupted / "artifact").exists()

    finish(launch(job_file, interrupted), interrupted)
    finish(launch(job_file, straight), straight)
    resumed, uninterrupted = (load_file(str(d / "artifact" / "model.safetensors")) for d in (interrupted, straight))
    assert resumed.keys() == uninterrupted.keys()
    differing = [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])]
    assert not differing, f"{len(differing)} tensors differ after resuming from step {killed_at}: {differing[:5]}"
    assert checkpoint_step(straight / "checkpoints" / "last.ckpt") == CONFIG.optim.max_steps
    whole = whole_weights(straight / "checkpoints" / "last.ckpt")
    assert whole.keys() == uninterrupted.keys()
    assert all(torch.equal(whole[k], uninterrupted[k]) for k in whole)
