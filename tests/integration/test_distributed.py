"""Two-process DDP (gloo) against the single-process full batch: loss and every gradient within 1e-5."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry.local_s3 import free_port

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[1] / "distributed" / "ddp_gradients.py"


def run_ddp(objective: str, out: Path, *flags: str) -> dict:
    command = [sys.executable, str(SCRIPT), "--objective", objective, "--out", str(out), "--port", str(free_port()),
               *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("objective", ["clip", "siglip", "identity"])
def test_two_rank_ddp_equals_single_process_full_batch(objective, tmp_path):
    result = run_ddp(objective, tmp_path / "result.json")
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
