"""Flow `evaluate`: a model artifact measured on an eval set and judged by a gate, without registering it
(the first two steps of the candidate pipeline, for a model made elsewhere)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from components.domains import domain
from components.evaluation.gate import GatePolicy, GateVerdict
from components.evaluation.suites import EvalTarget
from flows.candidate import Measured, incumbent_metrics, judge, measure, report_judgement
from flows.settings import Platform


class Evaluation(BaseModel):
    measured: Measured
    verdict: GateVerdict


@flow(name="evaluate", log_prints=True)
def evaluate(artifact_dir: str, target: EvalTarget, preset: str = "general", gate_policy: str | None = None,
             incumbent: str | None = None) -> Evaluation:
    """Measure `target` with its suite and judge the figures by `preset`'s gate (or the `gate_policy` file),
    against the version holding `incumbent` (`name@alias`) when given. A model whose embeddings are not
    finite gets a failing verdict naming the eval set and the rows."""
    policy = GatePolicy.from_yaml(Path(gate_policy)) if gate_policy else domain(preset).policy()
    pictures = Path(artifact_dir).parent / "eval"
    pictures.mkdir(parents=True, exist_ok=True)
    measured = measure(artifact_dir, [target], str(pictures))
    against = None
    if incumbent:
        name, _, alias = incumbent.partition("@")
        against = incumbent_metrics(Platform.from_env().registry(), name, alias or "production")
    verdict = judge(policy, measured, against)
    report_judgement(Path(artifact_dir).name, measured, verdict)
    return Evaluation(measured=measured, verdict=verdict)
