"""The GPU suite's dry run: every part at toy sizes on the CPU, so the script a lent GPU runs at once cannot
rot between loans. Its figures are checked for what they must be on any device: the FSDP part resumes and
its artifact equals the checkpoint, served embeddings equal the artifact's, and each figure is finite."""

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_the_gpu_suite_runs_every_part_at_toy_sizes(tmp_path):
    out = tmp_path / "suite.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_suite", "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ALIGNOPS_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    parts = json.loads(out.read_text())["parts"]
    assert set(parts) == {"peak", "train", "fsdp", "serving", "numerics"}
    assert all(part["ok"] for part in parts.values()), {k: p.get("error") for k, p in parts.items()}
    train = parts["train"]
    for key in ("eager/compute", "eager/loader", "compile/compute", "compile/loader"):
        assert train[key]["batch"] == 8 and math.isfinite(train[key]["pairs_per_s"]) and train[key]["mfu"] is None
    assert train["largest_batch"]["batch"] == 16
    fsdp = parts["fsdp"]
    assert fsdp["resumed_from"].endswith("last.ckpt") and fsdp["first_resumed_from"] is None
    assert fsdp["steps_after_resume"] == 2 and fsdp["artifact_equals_checkpoint"]
    serving = parts["serving"]
    assert len(serving["levels"]) == 12 and all(level["errors"] == 0 for level in serving["levels"].values())
    assert max(serving["numerics"].values()) <= 1e-5
    assert parts["numerics"]["relative_diff"] < 0.05  # bf16 autocast against fp32, one batch
    assert "batching on/off at 32" in done.stdout and "artifact equals checkpoint: True" in done.stdout
