"""`alignops registry import-hf | import-openclip | export`: models in from Hugging Face and open_clip, and
out to open_clip, transformers and ONNX (commands of the `registry` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import fail, user_errors
from flows.cli.registry import app
from flows.steps.output import echo


@app.command("import-hf")
@user_errors
def import_hf(
    directory: Annotated[Path, typer.Argument(help="a CLIP or SigLIP checkpoint in Hugging Face format")],
    name: Annotated[str, typer.Argument(help="model name in the registry")],
) -> None:
    """Run the `import_checkpoint` flow: register a pretrained CLIP/SigLIP checkpoint as a new version
    (evaluate it before promoting)."""
    from flows.import_checkpoint import CheckpointSource

    register_import(CheckpointSource(format="hf", location=str(directory)), name)


@app.command("import-openclip")
@user_errors
def import_openclip(
    architecture: Annotated[str, typer.Argument(help="an open_clip architecture name (ViT-B-32 …), a model config "
                                                     "JSON, or a folder in open_clip's hub layout "
                                                     "(open_clip_config.json and weights)")],
    name: Annotated[str, typer.Argument(help="model name in the registry")],
    checkpoint: Annotated[Path | None, typer.Option(help="the weights file (.safetensors, or .bin/.pt read "
                                                         "without pickle); a hub folder holds its own")] = None,
    tokenizer: Annotated[Path | None, typer.Option(help="CLIP's merges file (default: open_clip's, where it is "
                                                        "installed), or a Hugging Face tokenizer folder")] = None,
) -> None:
    """Run the `import_checkpoint` flow on an open_clip model (CLIP ViTs, SigLIP with timm's ViT): its towers,
    preprocessing, tokenizer and logit scale (and bias), from local files; evaluate it before promoting."""
    from components.interop.openclip import resolve_source
    from flows.import_checkpoint import CheckpointSource

    resolve_source(architecture, checkpoint, tokenizer)  # a name, folder or file that is not there fails before a flow
    register_import(CheckpointSource(format="open_clip", location=architecture,
                                     checkpoint=checkpoint and str(checkpoint), tokenizer=tokenizer and str(tokenizer)),
                    name)


def register_import(source, name: str) -> None:
    from flows.import_checkpoint import import_checkpoint
    from registry.names import check_name

    record = import_checkpoint(source, check_name(name, "model name"))
    echo(f"{record.ref} ({record.tags['family']}, embed_dim {record.tags['embed_dim']})")


@app.command("export")
@user_errors
def export(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION or NAME@ALIAS")],
    format_: Annotated[str, typer.Option("--format", help="open_clip | hf | onnx")],
    out: Annotated[str, typer.Option(help="a new (or empty) folder to write, or an object-store URL "
                                          "(s3://bucket/prefix) with nothing under it")],
) -> None:
    """Run the `export_model` flow: write a version as open_clip (config and weights `create_model` loads),
    transformers (`save_pretrained` of a CLIPModel or SiglipModel) or ONNX (both encoders, dynamic batch), with
    a model card (lineage, metrics, gate verdict, dataset versions)."""
    from components.interop.export import EXPORTERS
    from flows.export_model import export_model
    from registry.names import parse_ref

    parse_ref(ref)
    if format_ not in EXPORTERS:
        fail(f"unknown --format {format_!r}: choose open_clip, hf or onnx")
    if "://" not in out and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        fail(f"{out} exists and is not an empty folder: name a new one")
    written = export_model(ref, format_, out)
    echo(f"{ref} exported as {format_} to {out}: {', '.join(written)}")
