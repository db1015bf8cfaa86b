"""The `alignops` command line."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from components.data.manifest import ManifestError
from components.data.versioning import VersioningError
from components.runtime import configure_environment
from registry.names import InvalidName
from registry.registry import RegistryError

# Errors that describe a problem with the user's input or state; shown as one line, not a traceback.
USER_ERRORS = (ManifestError, VersioningError, RegistryError, InvalidName, FileNotFoundError)

app = typer.Typer(help="alignops: governed lifecycle for image-text models.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
data_app = typer.Typer(help="Datasets: generate, import, validate.", no_args_is_help=True)
registry_app = typer.Typer(help="Model registry: versions, aliases, promotion.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")


@app.callback()
def main() -> None:
    configure_environment()
    # bentoml build runs `uv`, installed beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def fail(message: str) -> None:
    from flows.report import console

    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def user_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            fail(str(error))

    return wrapper


@app.command()
@user_errors
def demo(
    train_images: Annotated[int, typer.Option(help="training images (5 captions each)")] = 2000,
    steps: Annotated[int, typer.Option(help="training steps")] = 700,
    no_package: Annotated[bool, typer.Option("--no-package", help="skip the bento build")] = False,
) -> None:
    """Generate data, version it with DVC, run the whole lifecycle, print a summary."""
    from components.config import SyntheticDataConfig, TrainConfig
    from flows.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(data=SyntheticDataConfig(train_images=train_images),
                                 train=TrainConfig(max_steps=steps), package=not no_package))
    if not result.evaluation.verdict.passed or (result.smoke and not result.smoke.passed):
        raise typer.Exit(1)


@data_app.command("generate")
@user_errors
def data_generate(dest: Path, train_images: int = 2000, seed: int = 0) -> None:
    """Write a generated captioned-image dataset to DEST."""
    from components.config import SyntheticDataConfig
    from components.data.synthetic import generate_dataset

    frame = generate_dataset(SyntheticDataConfig(train_images=train_images, seed=seed), dest)
    typer.echo(f"{len(frame)} captions of {frame['image_id'].nunique()} images in {dest}")


@data_app.command("import")
@user_errors
def data_import(
    fmt: Annotated[str, typer.Argument(help="csv | jsonl | coco")],
    src: Annotated[Path, typer.Argument(help="the table, or the COCO captions JSON")],
    dest: Annotated[Path, typer.Argument(help="the dataset directory to write")],
    images: Annotated[Path | None, typer.Option(help="folder the image paths are relative to")] = None,
    column: Annotated[list[str] | None, typer.Option(help="FIELD=SOURCE column mapping (csv/jsonl)")] = None,
) -> None:
    """Convert a dataset into the alignops manifest + images."""
    from components.data.readers import ColumnMapping, import_dataset, read_coco_captions, read_table

    if fmt == "coco":
        frame = read_coco_captions(src, images or src.parent)
    elif fmt in ("csv", "jsonl"):
        mapping = ColumnMapping(**dict(pair.split("=", 1) for pair in column or []))
        frame = read_table(src, mapping, images, fmt=fmt)
    else:
        fail(f"unknown format {fmt!r}: use csv, jsonl or coco")
    out = import_dataset(frame, dest)
    typer.echo(f"{len(out)} rows, {out['image_id'].nunique()} images -> {dest}")


@data_app.command("validate")
@user_errors
def data_validate(
    dataset: Path,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the JSON report here")] = None,
    max_rejected_fraction: float = 0.05,
) -> None:
    """Scan images and captions and run the GX suite. Exit code 0: pass, 1: fail."""
    from components.validation.validate import validate_dataset
    from flows.report import console, rich_table, verdict_mark

    report = validate_dataset(dataset, max_rejected_fraction)
    console.print(rich_table(f"Validation of {dataset}", ["check", "result", "critical", "failures", "examples"],
                             [(c.name, verdict_mark(c.passed), c.critical, c.failures, ", ".join(c.examples))
                              for c in report.checks]))
    console.print(f"rows in {report.rows_in} = kept {report.rows_kept} + quarantined {report.rows_quarantined}: "
                  f"{verdict_mark(report.passed)}")
    if json_out:
        json_out.write_text(json.dumps(report.model_dump(mode="json") | {"passed": report.passed}, indent=2))
    raise typer.Exit(0 if report.passed else 1)


@registry_app.command("list")
@user_errors
def registry_list(model: Annotated[str | None, typer.Argument()] = None) -> None:
    """Models, or the versions of MODEL, with aliases and gate verdicts."""
    from flows.report import console, rich_table, verdict_mark
    from flows.settings import Platform

    registry = Platform.from_env().registry()
    for name in [model] if model else registry.list_models():
        aliases = registry.aliases(name)
        console.print(rich_table(f"{name}", ["version", "created", "by", "gate", "mean recall", "aliases"], [
            (r.version, r.created_at[:19], r.created_by, verdict_mark(r.gate_passed),
             next((f"{v:.3f}" for k, v in r.metrics.items() if k.endswith("/mean_recall")), "-"),
             ", ".join(a for a, rec in sorted(aliases.items()) if rec.version == r.version))
            for r in registry.list_versions(name)]))


@registry_app.command("show")
@user_errors
def registry_show(ref: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME:VERSION or NAME")]) -> None:
    """A version: files, lineage, metrics, gate rules, and the model's audit log."""
    from flows.report import console, rich_table, verdict_mark
    from flows.settings import Platform

    registry = Platform.from_env().registry()
    record = registry.resolve(ref)
    console.print(f"[bold]{record.name}:{record.version}[/bold] created {record.created_at} by {record.created_by}")
    console.print(rich_table("metrics", ["metric", "value"], [(k, f"{v:.4f}") for k, v in record.metrics.items()]))
    if record.gate:
        console.print(rich_table(f"gate {record.gate['policy']}", ["rule", "result", "reason"],
                                 [(r["rule"], verdict_mark(r["passed"]), r["reason"]) for r in record.gate["rules"]]))
    lineage = {k: v for k, v in record.lineage.items() if k not in ("metrics", "training")}
    console.print(rich_table("lineage", ["field", "value"], [(k, json.dumps(v)) for k, v in lineage.items()]))
    console.print(rich_table("files", ["file", "size", "sha256"],
                             [(f, e.size, e.sha256[:16]) for f, e in record.files.items()]))
    console.print(rich_table(f"events of {record.name}", ["at", "event", "version", "alias", "actor", "reason"],
                             [(e.at[:19], e.event, e.version, e.alias or "", e.actor, e.reason)
                              for e in registry.events(record.name)]))


@registry_app.command("promote")
@user_errors
def registry_promote(
    name: str, version: int, alias: str = "production", reason: str = "",
    force: Annotated[str | None, typer.Option(help="override a missing or failed gate; the REASON is recorded")] = None,
) -> None:
    """Move ALIAS to VERSION; refused unless the version's gate verdict passed."""
    from flows.promote import promote

    previous = promote(name, version, alias, reason, force)
    typer.echo(f"{name}@{alias}: {previous or '-'} -> {version}")


@app.command("package")
@user_errors
def package_cmd(model_ref: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION")]) -> None:
    """Build a bento from a registry version and smoke-test it."""
    from flows.package import package
    from flows.settings import Platform

    Platform.from_env().registry().resolve(model_ref)  # a bad reference fails before Prefect starts

    bento_tag, result = package(model_ref)
    typer.echo(f"{bento_tag}: smoke test {'passed' if result.passed else 'FAILED'}")


@app.command()
def serve(bento: str, port: int = 3000, host: str = "127.0.0.1") -> None:
    """Serve a built bento (`bentoml serve`)."""
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bentoml", "serve", bento, "--host", host,
                                      "--port", str(port)]))
