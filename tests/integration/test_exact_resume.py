"""Kill a training run with SIGKILL mid-epoch, resume it, and get the uninterrupted run's weights bit for bit:
also with an objective that holds state (`momentum`: a momentum copy of the model and feature queues, which
shape every step's loss, so weights equal only if that state came back exactly)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from jobs import job
from safetensors.torch import load_file

from components.config import TrainConfig

pytestmark = pytest.mark.slow

# 800 training pairs / 64 = 12 batches an epoch; checkpoints every 5 steps are never at an epoch boundary,
# and 20 steps cross one.
CONFIG = TrainConfig(optim={"max_steps": 20, "warmup_steps": 3, "deterministic": True}, data={"batch_size": 64},
                     logging={"checkpoint_every_n_steps": 5, "val_every_n_steps": 50, "wandb": False})


def launch(tiny_dataset, run_dir, job_file) -> subprocess.Popen:
    command = [sys.executable, "-m", "components.training.launch", "--job", str(job_file),
               "--dataset", str(tiny_dataset), "--run-dir", str(run_dir)]
    run_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=(run_dir.parent / f"{run_dir.name}.err").open(
        "ab"), env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(process: subprocess.Popen, run_dir) -> int:
    """Wait for a run; return its peak resident memory in bytes."""
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (run_dir.parent / f"{run_dir.name}.err").read_text()[-3000:]
    return usage.ru_maxrss * 1024


def saved_step(checkpoint) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tiny_dataset, tmp_path):
    """With loader workers, which prefetch batches ahead of the checkpoint, and `momentum`, whose queue (100)
    wraps within the run (20 steps of 64). A second case, without workers and with plain `clip`, was dropped for
    the suite's time: the loader's checkpointed position and the weights resume by the same mechanism."""
    objective = {"name": "momentum", "options": {"queue_size": 100}}
    config = CONFIG.changed(data={"num_workers": 2}, optim={"objectives": [objective]})
    config_file = job(config, tiny_dataset, tmp_path / "unused").write(tmp_path)
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    reference = launch(tiny_dataset, straight, config_file)

    victim = launch(tiny_dataset, interrupted, config_file)
    last = interrupted / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = saved_step(last)
    # the objective's state is in the checkpoint: the queue filled, the copy apart from the model
    state = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    assert int(state["objectives.parts.momentum.queue_filled"]) == min(100, killed_at * 64)
    name = "vision.embeddings.patch_embedding.weight"
    assert not torch.equal(state[f"objectives.parts.momentum.ema.{name}"], state[f"model.{name}"])
    assert 0 < killed_at < CONFIG.optim.max_steps and killed_at % 12 != 0  # mid-epoch
    assert not (interrupted / "artifact").exists()

    resume_peak = finish(launch(tiny_dataset, interrupted, config_file), interrupted)
    original_peak = finish(reference, straight)
    assert resume_peak < original_peak * 1.1  # resuming holds no second copy of the run's state
    resumed, uninterrupted = (load_file(str(d / "artifact" / "model.safetensors")) for d in (interrupted, straight))
    assert resumed.keys() == uninterrupted.keys()
    differing = [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])]
    assert not differing, f"{len(differing)} tensors differ after resuming from step {killed_at}: {differing[:5]}"
    lineage = json.loads((interrupted / "artifact" / "lineage.json").read_text())
    assert lineage["training"]["steps"] == CONFIG.optim.max_steps
    # the resumed attempt logged only the steps after the checkpoint it resumed from
    assert len(list((interrupted / "logs").glob("attempt-*"))) == 2
