"""Flow `import_checkpoint`: a pretrained checkpoint on this machine (Hugging Face CLIP/SigLIP folder, or an
open_clip model) registered as a new version, with no gate verdict until it is evaluated."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from components.models.artifact import ModelArtifact
from flows.steps.platform import Platform
from registry.records import LineageRecord, VersionRecord

SOURCES = {"hf": "huggingface", "open_clip": "open_clip"}


class CheckpointSource(BaseModel):
    """A checkpoint as an import names it: read from local files only, nothing downloaded."""

    format: Literal["hf", "open_clip"] = "hf"
    location: str = Field(description="hf: the checkpoint folder; open_clip: an architecture name, a model config "
                                      "JSON, or a folder in open_clip's hub layout")
    checkpoint: str | None = Field(None, description="open_clip: the weights file (.safetensors, .bin, .pt)")
    tokenizer: str | None = Field(None, description="open_clip: CLIP's merges file, or a Hugging Face tokenizer "
                                                    "folder")

    @property
    def label(self) -> str:
        """What the checkpoint is called in messages and records: a name, never this machine's path."""
        return Path(self.location).name

    def load(self) -> ModelArtifact:
        if self.format == "hf":
            from components.models.pretrained import import_hf_checkpoint

            return import_hf_checkpoint(Path(self.location))
        from components.interop.openclip import import_openclip, resolve_source

        return import_openclip(resolve_source(self.location, self.checkpoint and Path(self.checkpoint),
                                              self.tokenizer and Path(self.tokenizer)))


@flow(name="import_checkpoint", log_prints=True)
def import_checkpoint(source: CheckpointSource, name: str) -> VersionRecord:
    artifact = source.load()
    with tempfile.TemporaryDirectory() as tmp:
        record = Platform.from_env().registry().register(
            name, artifact.save(Path(tmp) / "artifact"),
            lineage=LineageRecord.model_validate(artifact.lineage.model_dump(mode="json")),
            tags={"source": SOURCES[source.format], "family": artifact.config.family,
                  "embed_dim": str(artifact.config.embed_dim)},
            reason=f"imported from {source.format} {source.label}")
    create_markdown_artifact(key="registry-change", description=f"{record.ref} imported", markdown=(
        f"# Imported `{record.ref}`\n\n{artifact.config.family}, embedding size {artifact.config.embed_dim}, "
        f"from {source.format} `{source.label}`. No gate verdict yet: evaluate it before promoting."))
    return record
