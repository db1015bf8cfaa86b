"""Two-process DDP (gloo) against the single-process full batch: loss and every gradient within 1e-5."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[1] / "distributed" / "ddp_gradients.py"


def run_ddp(objective: str, out: Path, *flags: str) -> dict:
    """One run of the script; a run that stalled is retried once, with a warning that carries its stacks.
    Ranks stalled a few times in CI's sandbox, never on a development machine, in the teardown after the
    work was done (the script now skips it); the retry stays as a net. A genuine deadlock stalls again."""
    for attempt in (1, 2):
        command = [sys.executable, str(SCRIPT), "--objective", objective, "--out", str(out),
                   "--store", str(out.with_name(f"{out.stem}-rendezvous-{attempt}")), *flags]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        stalled = "Timeout (0:" in result.stderr or "timed out" in result.stderr.lower()
        if result.returncode == 0 or not stalled or attempt == 2:
            break
        warnings.warn(f"the DDP run stalled and is retried once; where it stood:\n{result.stderr[-3000:]}",
                      stacklevel=2)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize(("objective", "strategy"), [("clip", "ddp"), ("siglip", "ddp"), ("identity", "ddp"),
                                                     ("momentum", "ddp"),
                                                     ("clip", "fsdp"), ("siglip", "fsdp")])
def test_two_ranks_equal_single_process_full_batch(objective, strategy, tmp_path):
    """DDP, and FSDP2 with the weights sharded as `strategy: fsdp` trains (gradients gathered whole to compare),
    under which a rank holds its shard of every sharded tensor (the scalars stay whole): half of what a DDP rank
    holds. Peak resident memory is printed; at the tiny preset it is the runtime's, not the model's. The
    objective with state (`momentum`'s copy and queues) is compared on a third step, after two that moved the
    copy and wrapped the queue."""
    steps = ["--steps", "3"] if objective == "momentum" else []
    result = run_ddp(objective, tmp_path / "result.json", *(["--fsdp"] if strategy == "fsdp" else []), *steps)
    held = result["rank_bytes"] / result["full_bytes"]
    assert held == 1.0 if strategy == "ddp" else 0.45 < held < 0.55
    print(f"{strategy}: a rank holds {result['rank_bytes'] / 2**20:.2f} of {result['full_bytes'] / 2**20:.2f} MiB "
          f"of weights and gradients; peak RSS {result['peak_rss'] / 2**20:.0f} MiB")
    assert result["parameters"] > 100  # every tower parameter, the projections and the logit scale
    assert result["ddp_loss"] == pytest.approx(result["single_loss"], abs=1e-5)
    assert result["max_grad_difference"] < 1e-5, result["worst_parameter"]
    assert result["logit_scale_grad"][0] == pytest.approx(result["logit_scale_grad"][1], abs=1e-5)
    if objective == "siglip":
        assert result["logit_bias_grad"][0] == pytest.approx(result["logit_bias_grad"][1], abs=1e-5)


def test_a_plain_all_gather_is_caught(tmp_path):
    """`dist.all_gather` drops the other ranks' share of the gradient: same loss, wrong gradients."""
    result = run_ddp("clip", tmp_path / "result.json", "--plain-gather")
    assert result["ddp_loss"] == pytest.approx(result["single_loss"], abs=1e-5)
    assert result["max_grad_difference"] > 1e-3


def test_pretrain_flow_hands_training_to_torchrun_with_two_ranks(prefect_harness, tiny_dataset, tmp_path, monkeypatch):
    """Lightning's DDP over gloo in two torchrun processes: the flow gets the artifact rank 0 wrote."""
    strategy = "ddp"
    from components.config import TrainConfig
    from components.data.reference import DatasetRef
    from components.models.artifact import ModelArtifact
    from flows.pretrain import pretrain

    monkeypatch.setenv("ALIGNOPS_HOME", str(tmp_path / "home"))
    config = TrainConfig(optim={"max_steps": 4, "warmup_steps": 1}, data={"batch_size": 16},
                         logging={"checkpoint_every_n_steps": 2, "val_every_n_steps": 2, "wandb": False},
                         scale={"strategy": strategy, "devices": 2, "launcher": "torchrun"})
    artifact_dir = pretrain(DatasetRef(path=str(tiny_dataset), ref="tiny@1"), config, f"{strategy}-run")
    artifact = ModelArtifact.load(artifact_dir)
    assert artifact.lineage.training["steps"] == 4 and artifact.lineage.datasets == {"train": "tiny@1"}
    assert artifact.lineage.training["scale"]["devices"] == 2
    checkpoint = torch.load(tmp_path / "home" / "runs" / f"{strategy}-run" / "checkpoints" / "last.ckpt",
                            weights_only=True)
    assert checkpoint["global_step"] == 4
