"""Flow `export_model`: a registry version written out as open_clip, `transformers` or ONNX, with a model card
(lineage, metrics, gate verdict, dataset versions): the way back out of alignops."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.interop.export import CARD_FILE, Format, export
from components.models.artifact import ModelArtifact
from flows.steps.platform import Platform


@flow(name="export_model", log_prints=True)
def export_model(ref: str, format_: Format, out: str) -> list[str]:
    registry = Platform.from_env().registry()
    record = registry.resolve(ref)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = ModelArtifact.load(registry.download(record.name, record.version, Path(tmp) / "artifact"))
        written = export(artifact, format_, Path(out), record.ref, record)
    create_markdown_artifact(key="model-export", description=f"{record.ref} exported as {format_}",
                             markdown=(Path(out) / CARD_FILE).read_text())
    return [p.name for p in written]
