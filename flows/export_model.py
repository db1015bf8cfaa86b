"""Flow `export_model`: a registry version written out as open_clip, `transformers` or ONNX, with a model card
(lineage, metrics, gate verdict, dataset versions): the way back out of alignops."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.interop.export import CARD_FILE, Format, export
from components.models.artifact import ModelArtifact
from components.storage import upload
from flows.steps.platform import Platform


@flow(name="export_model", log_prints=True)
def export_model(ref: str, format_: Format, out: str) -> list[str]:
    """Write version `ref` as `format_` into `out`: a new or empty folder, or an object-store URL
    (`s3://bucket/prefix`, with nothing under it yet) where a deployment's worker shares no disk."""
    registry = Platform.from_env().registry()
    record = registry.resolve(ref)
    remote = "://" in out
    if remote:
        _check_empty_prefix(out)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = ModelArtifact.load(registry.download(record.name, record.version, Path(tmp) / "artifact"))
        folder = Path(tmp) / "export" if remote else Path(out)
        written = export(artifact, format_, folder, record.ref, record)
        card = (folder / CARD_FILE).read_text()
        if remote:
            upload(folder, out)
    create_markdown_artifact(key="model-export", description=f"{record.ref} exported as {format_} to {out}",
                             markdown=card)
    return [p.name for p in written]


def _check_empty_prefix(url: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path) and fs.ls(path):
        raise FileExistsError(f"{url} already holds files: name a new prefix")
