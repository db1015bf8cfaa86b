"""A broken model cannot reach production: a collapsed model (every embedding zero) and a diverged one (NaN
weights) are measured by the `evaluate` flow, registered with their failing verdict, and refused promotion."""

import shutil
import uuid

import pytest
import torch
from safetensors.torch import load_file, save_file

from components.models.artifact import WEIGHTS_FILE
from flows.evaluate import evaluate
from flows.promote import promote, register_version
from flows.settings import POLICIES, Platform
from registry.registry import PromotionRefused

pytestmark = pytest.mark.slow


def broken_artifact(tiny_artifact, tmp_path, value: float):
    """The tiny artifact with both projections filled with `value` (0: collapsed, NaN: diverged)."""
    artifact = shutil.copytree(tiny_artifact, tmp_path / "run" / "artifact")
    weights = load_file(str(artifact / WEIGHTS_FILE))
    for name in ("image_projection.weight", "text_projection.weight"):
        weights[name] = torch.full_like(weights[name], value)
    save_file(weights, str(artifact / WEIGHTS_FILE), metadata={"format": "pt"})
    return artifact


@pytest.mark.parametrize(("value", "failing"), [(0.0, "image_effective_rank"), (float("nan"), "embeddings")])
def test_a_broken_model_is_registered_as_failed_and_refused_promotion(prefect_harness, tiny_artifact, tiny_dataset,
                                                                      tmp_path, value, failing):
    artifact = broken_artifact(tiny_artifact, tmp_path, value)
    result = evaluate(str(artifact), str(tiny_dataset), "synthetic_test", str(POLICIES / "synthetic.yaml"))
    assert not result.verdict.passed
    failed = {r.metric.split("/")[1] for r in result.verdict.failures}
    assert failing in failed, result.verdict.failures
    if value == value:  # collapsed: every recall at or below chance, not the 1.0 that ties once gave
        assert all(result.metrics[m] <= result.chance[m] for m in result.chance), result.metrics
        assert result.intervals["synthetic_test/t2i_r1"].n == result.captions
    else:
        assert "100 of 100 text embeddings are not finite" in result.verdict.failures[0].reason
    name = f"broken-{uuid.uuid4().hex[:6]}"
    record = register_version(name, str(artifact), result.metrics, result.verdict, result.intervals)
    assert not record.gate_passed
    with pytest.raises(PromotionRefused, match="its gate verdict failed"):
        promote(name, record.version)
    registry = Platform.from_env().registry()
    assert registry.get_alias(name, "production") is None and registry.get_alias(name, "candidate") is None
    assert [e.event for e in registry.events(name)] == ["registered", "promotion_refused"]
