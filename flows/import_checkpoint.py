"""Flow `import_checkpoint`: a pretrained CLIP/SigLIP checkpoint (Hugging Face format, local files)
registered as a new version, with no gate verdict until it is evaluated."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.models.pretrained import import_hf_checkpoint
from flows.steps.platform import Platform
from registry.records import LineageRecord, VersionRecord


@flow(name="import_checkpoint", log_prints=True)
def import_checkpoint(directory: str, name: str) -> VersionRecord:
    artifact = import_hf_checkpoint(Path(directory))
    with tempfile.TemporaryDirectory() as tmp:
        record = Platform.from_env().registry().register(
            name, artifact.save(Path(tmp) / "artifact"),
            lineage=LineageRecord.model_validate(artifact.lineage.model_dump(mode="json")),
            tags={"source": "huggingface", "family": artifact.config.family,
                  "embed_dim": str(artifact.config.embed_dim)},
            reason=f"imported from {Path(directory).name}")
    create_markdown_artifact(key="registry-change", description=f"{record.ref} imported", markdown=(
        f"# Imported `{record.ref}`\n\n{artifact.config.family}, embedding size {artifact.config.embed_dim}, "
        f"from `{Path(directory).name}`. No gate verdict yet: evaluate it before promoting."))
    return record
