"""Flow `evaluate`: retrieval metrics of a model artifact on an eval split, judged by a gate policy."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from components.evaluation.evidence import Interval, NonFiniteEmbeddings
from components.evaluation.examples import retrieval_grid
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate, refused
from components.evaluation.suites import measure
from components.models.embedder import Embedder
from flows.report import inline_png, markdown_table


class Evaluation(BaseModel):
    eval_set: str
    metrics: dict[str, float]
    chance: dict[str, float]
    intervals: dict[str, Interval] = Field(default_factory=dict, description="95% intervals and query counts")
    verdict: GateVerdict
    images: int
    captions: int
    metrics_file: str


class Measured(BaseModel):
    metrics: dict[str, float]
    chance: dict[str, float]
    intervals: dict[str, Interval]
    images: int
    captions: int
    grid: str


@task
def measure_retrieval(artifact_dir: str, dataset_dir: str, eval_set: str, split: str, out_dir: str,
                      quarantined: list[str]) -> Measured:
    result = measure(Embedder.load(Path(artifact_dir)), Path(dataset_dir), split, exclude=frozenset(quarantined),
                     name=eval_set)
    grid = retrieval_grid(result.encoded, Path(dataset_dir), Path(out_dir) / f"{eval_set}-examples.png")
    named = result.named(eval_set)
    return Measured(metrics=named.metrics, chance=named.chance, intervals=named.intervals,
                    images=len(result.encoded.image_paths), captions=len(result.encoded.captions), grid=str(grid))


@flow(name="evaluate", log_prints=True)
def evaluate(artifact_dir: str, dataset_dir: str, eval_set: str, gate_policy: str, split: str = "test",
             incumbent_metrics: dict[str, float] | None = None, quarantined: list[str] | None = None) -> Evaluation:
    """Measure, write `metrics.json` beside the artifact, and judge the metrics against the gate policy. A
    model whose embeddings are not finite gets a failing verdict naming the eval set and the rows."""
    out_dir = Path(artifact_dir).parent / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = GatePolicy.from_yaml(Path(gate_policy))
    try:
        measured = measure_retrieval(artifact_dir, dataset_dir, eval_set, split, str(out_dir), quarantined or [])
    except NonFiniteEmbeddings as error:
        get_run_logger().error("%s", error)
        measured = Measured(metrics={}, chance={}, intervals={}, images=0, captions=0, grid="")
        verdict = refused(policy, f"{eval_set}/embeddings", str(error))
    else:
        verdict = evaluate_gate(policy, measured.metrics, incumbent_metrics, intervals=measured.intervals)
    metrics_file = out_dir / "metrics.json"
    result = Evaluation(eval_set=eval_set, metrics=measured.metrics, chance=measured.chance,
                        intervals=measured.intervals, verdict=verdict, images=measured.images,
                        captions=measured.captions, metrics_file=str(metrics_file))
    metrics_file.write_text(result.model_dump_json(indent=2))
    report_evaluation(result, measured.grid)
    return result


def report_evaluation(result: Evaluation, grid: str) -> None:
    def interval(metric: str) -> str:
        found = result.intervals.get(metric)
        return f"[{found.low:.3f}, {found.high:.3f}] (n={found.n})" if found else "-"

    rows = [{"metric": m, "value": f"{v:.4f}", "95% interval": interval(m),
             "chance": f"{result.chance[m]:.4f}" if m in result.chance else "-"} for m, v in result.metrics.items()]
    rules = [{"rule": r.rule, "result": "pass" if r.passed else "FAIL", "reason": r.reason}
             for r in result.verdict.rules]
    picture = f"\n\n## Retrieval examples\n\n{inline_png(Path(grid), 'retrieval examples')}" if grid else ""
    create_markdown_artifact(key="evaluation", description=f"{result.eval_set}: gate {result.verdict.policy}",
                             markdown=(
        f"# {result.eval_set}: gate `{result.verdict.policy}` {'passed' if result.verdict.passed else 'FAILED'}\n\n"
        f"{result.images} images, {result.captions} captions.\n\n{markdown_table(rows)}\n\n"
        f"## Gate\n\n{markdown_table(rules)}{picture}"))
