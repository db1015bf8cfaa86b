"""A broken model cannot reach production: a collapsed model (every embedding zero) and a diverged one (NaN
weights) are measured by the `evaluate` flow and by the candidate pipeline, registered with their failing
verdict, left out of `candidate`, and refused promotion."""

import shutil
import uuid

import pytest
import torch
from safetensors.torch import load_file, save_file

from components.data.reference import DatasetRef
from components.domains import domain
from components.evaluation.suites import EvalTarget
from components.models.artifact import WEIGHTS_FILE
from flows.evaluate import evaluate
from flows.promote import promote
from flows.steps.candidate import Candidate, run_candidate_pipeline
from flows.steps.platform import Platform
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
    result = evaluate(str(artifact), DatasetRef(path=str(tiny_dataset)))
    measured = result.measured
    target = EvalTarget(name=f"{DatasetRef(path=str(tiny_dataset)).label}_test", dataset_dir=str(tiny_dataset))
    assert not result.verdict.passed
    failed = {r.metric.split("/")[-1] for r in result.verdict.failures}
    assert failing in failed, result.verdict.failures
    if value == value:  # collapsed: every recall at or below chance, not the 1.0 that ties once gave
        assert all(measured.metrics[m] <= measured.chance[m] for m in measured.chance), measured.metrics
        assert measured.intervals[f"{target.name}/t2i_r1"].n == measured.sizes[target.name][1]
    else:
        assert "100 of 100 text embeddings are not finite" in result.verdict.failures[0].reason
    name = f"broken-{uuid.uuid4().hex[:6]}"
    registry = Platform.from_env().registry()
    judged = run_candidate_pipeline(registry, Candidate(name=name, artifact_dir=str(artifact)), [target],
                                    domain("general").policy())
    assert judged.verdict == result.verdict and judged.measured.metrics == measured.metrics
    record = judged.record
    assert not record.gate_passed and record.gate.policy == "general"
    with pytest.raises(PromotionRefused, match="its gate verdict failed"):
        promote(name, record.version)
    assert registry.get_alias(name, "production") is None and registry.get_alias(name, "candidate") is None
    assert [e.event for e in registry.events(name)] == ["registered", "promotion_refused"]
