"""Flow `evaluate`: retrieval metrics of a model artifact on an eval split, judged by a gate policy."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from components.evaluation.embed import encode_split
from components.evaluation.examples import retrieval_grid
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate
from components.evaluation.retrieval import chance_metrics, prefixed, retrieval_metrics
from components.models.embedder import Embedder
from flows.report import inline_png, markdown_table


class Evaluation(BaseModel):
    eval_set: str
    metrics: dict[str, float]
    chance: dict[str, float]
    verdict: GateVerdict
    images: int
    captions: int
    metrics_file: str


@task
def measure(artifact_dir: str, dataset_dir: str, eval_set: str, split: str, out_dir: str,
            quarantined: list[str]) -> tuple[dict[str, float], dict[str, float], int, int, str]:
    encoded = encode_split(Embedder.load(Path(artifact_dir)), Path(dataset_dir), split, frozenset(quarantined))
    metrics = prefixed(retrieval_metrics(encoded.image_emb, encoded.text_emb, encoded.text_to_image), eval_set)
    chance = prefixed(chance_metrics(encoded.text_to_image, len(encoded.image_paths)), eval_set)
    grid = retrieval_grid(encoded, Path(dataset_dir), Path(out_dir) / f"{eval_set}-examples.png")
    return metrics, chance, len(encoded.image_paths), len(encoded.captions), str(grid)


@flow(name="evaluate", log_prints=True)
def evaluate(artifact_dir: str, dataset_dir: str, eval_set: str, gate_policy: str, split: str = "test",
             incumbent_metrics: dict[str, float] | None = None, quarantined: list[str] | None = None) -> Evaluation:
    """Measure, write `metrics.json` beside the artifact, and judge the metrics against the gate policy."""
    out_dir = Path(artifact_dir).parent / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics, chance, images, captions, grid = measure(artifact_dir, dataset_dir, eval_set, split, str(out_dir),
                                                      quarantined or [])
    verdict = evaluate_gate(GatePolicy.from_yaml(Path(gate_policy)), metrics, incumbent_metrics)
    metrics_file = out_dir / "metrics.json"
    result = Evaluation(eval_set=eval_set, metrics=metrics, chance=chance, verdict=verdict, images=images,
                        captions=captions, metrics_file=str(metrics_file))
    metrics_file.write_text(result.model_dump_json(indent=2))
    rows = [{"metric": m, "value": f"{v:.4f}", "chance": f"{chance[m]:.4f}"} for m, v in metrics.items()]
    rules = [{"rule": r.rule, "result": "pass" if r.passed else "FAIL", "reason": r.reason} for r in verdict.rules]
    create_markdown_artifact(key="evaluation", description=f"{eval_set}: gate {verdict.policy}", markdown=(
        f"# {eval_set}: gate `{verdict.policy}` {'passed' if verdict.passed else 'FAILED'}\n\n"
        f"{images} images, {captions} captions.\n\n{markdown_table(rows)}\n\n## Gate\n\n{markdown_table(rules)}\n\n"
        f"## Retrieval examples\n\n{inline_png(Path(grid), 'retrieval examples')}"))
    return result
