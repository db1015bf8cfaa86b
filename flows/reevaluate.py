"""Flow `reevaluate`: a registered version measured again on every eval set of the catalog, at each
dataset's newest revision, compared with the metrics it was registered with (scheduled weekly for
`general@production`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from components.evaluation.evidence import NonFiniteEmbeddings
from flows.steps.candidate import measure
from flows.steps.datasets import materialise
from flows.steps.output import markdown_table
from flows.steps.platform import Platform
from infra.catalog import EvalSet, read_catalog
from registry.records import Event


class Remeasured(BaseModel):
    model: str
    version: int
    datasets: dict[str, str]  # eval set -> dataset `path@rev` measured
    metrics: dict[str, float]
    drops: dict[str, float]  # metrics that fell by more than the tolerance since registration


@flow(name="reevaluate", log_prints=True)
def reevaluate(model_ref: str = "general@production", eval_sets: list[EvalSet] | None = None,
               tolerance: float = 0.02) -> Remeasured:
    """Measure `model_ref` on `eval_sets` (default: the workspace's catalog, `eval_sets.yaml`), record the
    figures as a registry event, and flag metrics that dropped by more than `tolerance` since registration."""
    platform = Platform.from_env()
    registry = platform.registry()
    record = registry.resolve(model_ref)
    workspace = platform.open_workspace()
    sets = eval_sets if eval_sets is not None else read_catalog(workspace)
    if not sets:
        raise ValueError(f"no eval sets: add some to {platform.workspace}/eval_sets.yaml with "
                         "`alignops data add DATASET --eval-set NAME`, or pass `eval_sets`")
    refs = {eval_set.name: materialise(eval_set.dataset, workspace) for eval_set in sets}
    with tempfile.TemporaryDirectory() as tmp:
        artifact_dir = str(registry.download(record.name, record.version, Path(tmp) / "artifact"))
        measured = measure(artifact_dir, [s.target(refs[s.name].path) for s in sets])
    if measured.refusal:
        raise NonFiniteEmbeddings(measured.refusal)
    metrics, datasets = measured.metrics, {name: ref.ref for name, ref in refs.items()}
    drops = {m: record.metrics[m] - v for m, v in metrics.items()
             if m in record.metrics and record.metrics[m] - v > tolerance}
    result = Remeasured(model=record.name, version=record.version, datasets=datasets, metrics=metrics, drops=drops)
    registry.record_event(Event(event="reevaluated", model=record.name, version=record.version,
                                details=result.model_dump(include={"datasets", "metrics", "drops"})))
    report(model_ref, result, record.metrics)
    if drops:
        get_run_logger().warning("%s:%s dropped on %s since registration", record.name, record.version,
                                 ", ".join(f"{m} by {d:.3f}" for m, d in drops.items()))
    return result


def report(model_ref: str, result: Remeasured, registered: dict[str, float]) -> None:
    rows = [{"metric": m, "now": f"{v:.4f}",
             "registered": f"{registered[m]:.4f}" if m in registered else "-",
             "change": f"{v - registered[m]:+.4f}" if m in registered else "-",
             "flag": "DROP" if m in result.drops else ""} for m, v in result.metrics.items()]
    sets = [{"eval set": name, "dataset": ref} for name, ref in result.datasets.items()]
    create_markdown_artifact(key="reevaluation", description=f"{model_ref} re-measured", markdown=(
        f"# `{model_ref}` = `{result.model}:{result.version}` re-measured\n\n"
        f"{len(result.drops)} metric(s) dropped beyond tolerance.\n\n{markdown_table(sets)}\n\n"
        f"{markdown_table(rows)}"))
