"""The `alignops` command line."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import click
import typer

from components.runtime import alignops_home, configure_environment
from infra.stack import StackError
from infra.workspace import VersioningError
from registry.names import InvalidName
from registry.registry import RegistryError

# Errors that describe a problem with the user's input or state; shown as one line, not a traceback. Our
# ValueErrors (ManifestError, pydantic's ValidationError, config checks) all say what to change.
USER_ERRORS = (ValueError, VersioningError, RegistryError, InvalidName, FileNotFoundError, StackError)

app = typer.Typer(help="alignops: governed lifecycle for image-text models.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
data_app = typer.Typer(help="Datasets: generate, import, validate.", no_args_is_help=True)
registry_app = typer.Typer(help="Model registry: versions, aliases, promotion.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")


_DEBUG = {"on": False}  # set by `alignops --debug`
MAX_ERROR_CHARS = 400


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on the terminal (they go to "
                                                               "$ALIGNOPS_HOME/logs/cli.log otherwise)")] = False,
         ) -> None:
    from infra.stack import use_running_stack

    _DEBUG["on"] = debug
    use_running_stack(configure_environment())  # commands talk to the local stack while it runs
    # bentoml build runs `uv`, installed beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if not debug:
        keep_tracebacks_off_the_terminal()


def error_log() -> Path:
    return alignops_home() / "logs" / "cli.log"


def log_traceback(error: BaseException | tuple) -> Path:
    """Append the traceback (credentials masked) to the CLI's log file; return its path."""
    import traceback
    from datetime import UTC, datetime

    from components.secrets import redact

    info = error if isinstance(error, tuple) else (type(error), error, error.__traceback__)
    path = error_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        log.write(f"--- {datetime.now(UTC).isoformat()} alignops {redact(' '.join(sys.argv[1:]))[:2000]}\n")
        log.write(redact("".join(traceback.format_exception(*info))))
    return path


def one_line(message: str) -> str:
    """A message as one bounded line, credentials masked (a 1 MB file name stays readable)."""
    from components.secrets import redact

    text = " ".join(redact(message).split())
    return text if len(text) <= MAX_ERROR_CHARS else f"{text[:MAX_ERROR_CHARS]}… ({len(text)} characters)"


def keep_tracebacks_off_the_terminal() -> None:
    """Prefect logs a failed flow's traceback on the terminal before our one-line error: the console
    handlers print the message alone, and the traceback goes to the log file."""
    import logging
    import logging.config

    class OneLine(logging.Formatter):
        def __init__(self, inner: logging.Formatter | None):
            super().__init__()
            self.inner = inner or logging.Formatter()

        def format(self, record: logging.LogRecord) -> str:
            if not record.exc_info:
                return self.inner.format(record)
            log_traceback(record.exc_info)
            saved = record.exc_info, record.exc_text
            record.exc_info, record.exc_text = None, None
            try:
                return one_line(self.inner.format(record)) + f" (traceback in {error_log()})"
            finally:
                record.exc_info, record.exc_text = saved

    def wrap_console_handlers() -> None:
        for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
            for handler in logging.getLogger(name).handlers:
                if type(handler).__name__ == "PrefectConsoleHandler" and not isinstance(handler.formatter, OneLine):
                    handler.setFormatter(OneLine(handler.formatter))

    # Prefect sets its handlers up when a command first imports it (importing it here would cost every
    # command ~1.3 s): wrap them as soon as it does.
    configure = logging.config.dictConfig

    def configure_then_wrap(config: dict) -> None:
        configure(config)
        wrap_console_handlers()

    logging.config.dictConfig = configure_then_wrap
    wrap_console_handlers()


def fail(message: str) -> None:
    from flows.report import console

    console.print(f"[red]error:[/red] {one_line(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def user_errors(command: Callable) -> Callable:
    """Every failure is one line on the terminal and exit code 1; the traceback goes to the log file (or
    to the terminal with --debug). Usage errors stay typer's (exit code 2)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except USER_ERRORS as error:
            if _DEBUG["on"]:
                raise
            log_traceback(error)
            fail(str(error))
        except Exception as error:  # noqa: BLE001 - anything else is still one line, with where to look
            if _DEBUG["on"]:
                raise
            fail(f"{type(error).__name__}: {error} (the traceback is in {log_traceback(error)}; "
                 "`alignops --debug …` shows it here)")

    return wrapper


@app.command()
@user_errors
def demo(
    train_images: Annotated[int, typer.Option(help="training images (5 captions each)")] = 2000,
    steps: Annotated[int, typer.Option(help="training steps")] = 700,
    no_package: Annotated[bool, typer.Option("--no-package", help="skip the bento build")] = False,
    no_finetune: Annotated[bool, typer.Option("--no-finetune", help="skip the domain finetunes")] = False,
) -> None:
    """Generate data, version it with DVC, run the whole lifecycle and the domain finetunes, print a summary."""
    from components.config import SyntheticDataConfig, TrainConfig
    from flows.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(data=SyntheticDataConfig(train_images=train_images),
                                 train=TrainConfig(max_steps=steps), package=not no_package,
                                 **({"domains": []} if no_finetune else {})))
    if not result.evaluation.verdict.passed or (result.smoke and not result.smoke.passed):
        raise typer.Exit(1)


@app.command()
@user_errors
def train(
    dataset: Annotated[Path, typer.Argument(help="dataset directory (manifest.parquet + images)")],
    config: Annotated[Path | None, typer.Option(help="TrainConfig as YAML or JSON (see the README)")] = None,
    run_name: Annotated[str, typer.Option(help="re-using a run name resumes that run")] = "pretrain",
    dataset_version: Annotated[str | None, typer.Option(help="the dataset's `path@rev`, for lineage")] = None,
) -> None:
    """Run the `pretrain` flow on a dataset and print the model artifact's directory."""
    import yaml

    from components.config import TrainConfig
    from components.data.manifest import read_manifest
    from flows.pretrain import pretrain

    read_manifest(dataset)  # a bad dataset fails before Prefect starts
    train_config = TrainConfig.model_validate(yaml.safe_load(config.read_text()) or {}) if config else TrainConfig()
    typer.echo(pretrain(str(dataset), dataset_version or str(dataset), "", train_config, run_name))


@app.command("finetune")
@user_errors
def finetune_cmd(
    domain_name: Annotated[str, typer.Argument(metavar="DOMAIN", help="medical, remote_sensing or person")],
    dataset: Annotated[Path, typer.Argument(help="the domain dataset directory")],
    general: Annotated[Path, typer.Option(help="the general eval dataset (forgetting rule, replay)")],
    base: Annotated[str, typer.Option(help="registry reference of the model to adapt")] = "general@production",
    dataset_version: Annotated[str | None, typer.Option(help="the dataset's `path@rev`, for lineage")] = None,
    mode: Annotated[str, typer.Option(help="full, lit or last_n")] = "full",
    max_general_drop: Annotated[float, typer.Option(help="tolerated drop of general mean recall")] = 0.10,
) -> None:
    """Run the `finetune` flow: adapt a registry version to a domain and register the gated result."""
    from components.data.manifest import read_manifest
    from components.domains import domain
    from flows.finetune import FinetuneConfig, finetune

    domain(domain_name)
    read_manifest(dataset), read_manifest(general)  # bad inputs fail before Prefect starts
    _registry().resolve(base)
    result = finetune(FinetuneConfig(base_model=base, domain=domain_name, dataset_dir=str(dataset),
                                     dataset_version=dataset_version or str(dataset), general_dataset_dir=str(general),
                                     mode=mode, max_general_drop=max_general_drop))
    primary = result.primary_metric
    typer.echo(f"{result.model}:{result.version} from {result.parent}: {primary} {result.base_metrics[primary]:.3f} "
               f"-> {result.metrics[primary]:.3f}; gate {'passed' if result.verdict.passed else 'FAILED'}")
    if not result.verdict.passed:
        raise typer.Exit(1)


@data_app.command("generate")
@user_errors
def data_generate(dest: Path, train_images: int = 2000, seed: int = 0,
                  domain_name: Annotated[str | None, typer.Option(
                      "--domain", help="medical, remote_sensing or person: write that domain's native format "
                                       "under DEST/source and import it into DEST/dataset")] = None) -> None:
    """Write a generated captioned-image dataset to DEST."""
    from components.config import SyntheticDataConfig
    from components.data.generators import generate_domain_dataset
    from components.data.generators.synthetic import generate_dataset

    if domain_name:
        frame = generate_domain_dataset(domain_name, dest, images=train_images, seed=seed)
        dest = dest / "dataset"
    else:
        frame = generate_dataset(SyntheticDataConfig(train_images=train_images, seed=seed), dest)
    typer.echo(f"{len(frame)} captions of {frame['image_id'].nunique()} images in {dest}")


@data_app.command("import")
@user_errors
def data_import(
    fmt: Annotated[str, typer.Argument(help="csv tsv jsonl parquet coco karpathy cuhk-pedes icfg-pedes rstpreid "
                                            "mimic-cxr webdataset")],
    src: Annotated[Path, typer.Argument(help="the table / annotation JSON, the MIMIC folder, or shard(s)")],
    dest: Annotated[Path, typer.Argument(help="the dataset directory to write")],
    images: Annotated[Path | None, typer.Option(help="folder the image paths are relative to")] = None,
    column: Annotated[list[str] | None, typer.Option(help="FIELD=SOURCE column mapping (tables)")] = None,
    impression_only: Annotated[bool, typer.Option(help="mimic-cxr: caption from IMPRESSION only")] = False,
) -> None:
    """Convert a dataset into the alignops manifest + images."""
    import shutil

    from components.data.readers import ColumnMapping, import_dataset, read_source
    from components.data.readers.importer import QUARANTINE_FILE

    mapping = ColumnMapping(**dict(pair.split("=", 1) for pair in column or []))
    staging = dest / ".staging"
    try:
        rows = read_source(fmt, src, images, mapping, staging,
                           ("impression",) if impression_only else ("findings", "impression"))
        result = import_dataset(rows, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kept = result.manifest
    typer.echo(f"{result.rows_in} rows in = {len(kept)} kept ({kept['image_id'].nunique()} images) + "
               f"{len(result.quarantined)} quarantined -> {dest}")
    if len(result.quarantined):
        typer.echo(f"quarantined rows and why: {dest / QUARANTINE_FILE} (first: "
                   f"{result.quarantined['reason'].iloc[0]})", err=True)


@data_app.command("shard")
@user_errors
def data_shard(
    dataset: Path, out: Path,
    samples_per_shard: Annotated[int, typer.Option(help="images per shard")] = 1000,
    resize: Annotated[int | None, typer.Option(help="shrink images so the short side is at most this")] = None,
) -> None:
    """Write WebDataset tar shards from a dataset, for streaming training at scale."""
    from components.data.shards import write_shards

    shards = write_shards(dataset, out, samples_per_shard, resize)
    typer.echo(f"{len(shards)} shards -> {out}")


@data_app.command("add")
@user_errors
def data_add(
    dataset: Annotated[Path, typer.Argument(help="a dataset directory inside the workspace")],
    message: str = "",
    eval_set: Annotated[str | None, typer.Option(help="also list it in the eval-set catalog under this name "
                                                      "(re-measured weekly), e.g. `coco_test`")] = None,
    split: Annotated[str, typer.Option(help="the split the eval set measures")] = "test",
    domain: Annotated[str | None, typer.Option(help="metric suite of a domain preset (default: retrieval)")] = None,
) -> None:
    """Version a dataset with DVC in the workspace (git commit + push to the configured remote)."""
    from flows.settings import Platform
    from infra.catalog import EvalSet, add_eval_set
    from infra.workspace import track_dataset

    platform = Platform.from_env()
    workspace = platform.open_workspace()
    # a bad eval-set name or domain fails before DVC runs
    entry = EvalSet(name=eval_set, dataset="-", split=split, domain=domain) if eval_set else None
    version = track_dataset(workspace, dataset, message)
    typer.echo(f"{version.ref}  (DVC {version.dvc_md5}, {version.files} files, pushed to {platform.dvc_remote_url})")
    if entry:
        add_eval_set(workspace, entry.model_copy(update={"dataset": version.path}))
        typer.echo(f"eval set {entry.name}: {version.path} ({split}) added to {workspace / 'eval_sets.yaml'}")


@data_app.command("get")
@user_errors
def data_get(ref: Annotated[str, typer.Argument(help="PATH@REV, as `alignops data add` prints it")],
             dest: Path) -> None:
    """Materialise the exact bytes of a dataset version (pulled from the remote when not cached)."""
    from flows.settings import Platform
    from infra.workspace import checkout_version

    checkout_version(Platform.from_env().open_workspace(), ref, dest)
    typer.echo(f"{ref} -> {dest} (hash verified)")


@data_app.command("validate")
@user_errors
def data_validate(
    dataset: Path,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the JSON report here")] = None,
    out: Annotated[Path | None, typer.Option(help="folder for quarantine.csv, images.parquet and Data Docs")] = None,
    max_rejected_fraction: float = 0.05,
    workers: Annotated[int | None, typer.Option(help="parallel scans (default: the core count)")] = None,
) -> None:
    """Scan images and captions and run the GX suite. Exit code 0: pass, 1: fail."""
    from components.config import ValidationConfig
    from components.validation.validate import validate_dataset, write_report
    from flows.report import console, rich_table, verdict_mark

    config = ValidationConfig(max_rejected_fraction=max_rejected_fraction, **({"workers": workers} if workers else {}))
    with console.status(f"Validating {dataset}"):
        report = validate_dataset(dataset, config, out)
    console.print(rich_table(f"Validation of {dataset}", ["check", "result", "critical", "failures", "examples"],
                             [(c.name, verdict_mark(c.passed), c.critical, c.failures, ", ".join(c.examples))
                              for c in report.checks]))
    reasons = Counter(q.reason.split(" (")[0].split(":")[0] for q in report.quarantine).most_common()
    if reasons:
        console.print(rich_table("quarantined rows by reason", ["reason", "rows"], reasons))
    facts = report.image_facts
    console.print(f"{facts.images} images; modes {facts.modes}; {facts.exif_rotated} EXIF-rotated (applied); "
                  f"{facts.duplicate_images} duplicate files")
    console.print(f"rows in {report.rows_in} = kept {report.rows_kept} + quarantined {report.rows_quarantined}: "
                  f"{verdict_mark(report.passed)}")
    if out:
        report_path, quarantine_path = write_report(report, out)
        console.print(f"report {report_path}; quarantine {quarantine_path}; Data Docs {report.data_docs}")
    if json_out:
        json_out.write_text(json.dumps(report.model_dump(mode="json") | {"passed": report.passed}, indent=2))
    raise typer.Exit(0 if report.passed else 1)


JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def emit_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _registry():
    from flows.settings import Platform

    return Platform.from_env().registry()


def _metric_filter(text: str) -> tuple[str, str, float]:
    import re

    match = re.fullmatch(r"\s*([^<>=\s]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text)
    if not match:
        fail(f"bad --metric {text!r}: write it like 'coco_val/t2i_r1>=0.3'")
    return match[1], match[2], float(match[3])


def _headline(metrics: dict[str, float]) -> str:
    return next((f"{v:.3f}" for k, v in metrics.items() if k.endswith("/mean_recall")), "-")


@registry_app.command("list")
@user_errors
def registry_list(
    model: Annotated[str | None, typer.Argument(help="one model; all models when left out")] = None,
    alias: Annotated[str | None, typer.Option(help="only versions holding this alias")] = None,
    tag: Annotated[str | None, typer.Option(help="KEY=VALUE")] = None,
    dataset: Annotated[str | None, typer.Option(help="only versions trained on this dataset ref (path@rev)")] = None,
    metric: Annotated[str | None, typer.Option(help="e.g. 'synthetic_test/t2i_r1>=0.5'")] = None,
    all_versions: Annotated[bool, typer.Option("--all", help="include archived versions")] = False,
    as_json: JsonOption = False,
) -> None:
    """Versions with their aliases, gate verdicts and headline metric; filters combine."""
    from flows.report import console, rich_table, verdict_mark

    registry = _registry()
    found = registry.search(model, alias=alias, tag=tuple(tag.split("=", 1)) if tag else None, dataset=dataset,
                            metric=_metric_filter(metric) if metric else None, include_archived=all_versions)
    aliases = {name: registry.aliases(name) for name in {r.name for r in found}}

    def held(record) -> list[str]:
        return sorted(a for a, rec in aliases[record.name].items() if rec.version == record.version)

    if as_json:
        return emit_json([r.model_dump(exclude={"files"}) | {"aliases": held(r)} for r in found])
    console.print(rich_table(f"Registry {registry.store.url}", ["model", "version", "created", "by", "gate",
                                                                 "mean recall", "aliases"], [
        (r.name, r.version, r.created_at[:19], r.created_by, verdict_mark(r.gate_passed), _headline(r.metrics),
         ", ".join(held(r))) for r in found]))


@registry_app.command("show")
@user_errors
def registry_show(ref: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME:VERSION or NAME")],
                  as_json: JsonOption = False) -> None:
    """A version: metrics, gate rules, lineage and files."""
    from flows.report import console, rich_table, verdict_mark

    registry = _registry()
    record = registry.resolve(ref)
    held = sorted(a for a, rec in registry.aliases(record.name).items() if rec.version == record.version)
    if as_json:
        return emit_json(record.model_dump() | {"aliases": held,
                                                "archived": registry.is_archived(record.name, record.version)})
    console.print(f"[bold]{record.name}:{record.version}[/bold] created {record.created_at} by {record.created_by}"
                  f"; aliases: {', '.join(held) or '-'}")
    console.print(rich_table("metrics", ["metric", "value"], [(k, f"{v:.4f}") for k, v in record.metrics.items()]))
    if record.gate:
        console.print(rich_table(f"gate {record.gate['policy']}", ["rule", "result", "reason"],
                                 [(r["rule"], verdict_mark(r["passed"]), r["reason"]) for r in record.gate["rules"]]))
    lineage = {k: v for k, v in record.lineage.items() if k not in ("metrics", "training")}
    console.print(rich_table("lineage", ["field", "value"], [(k, json.dumps(v)) for k, v in lineage.items()]))
    console.print(rich_table("files", ["file", "size", "sha256"],
                             [(f, e.size, e.sha256[:16]) for f, e in record.files.items()]))


@registry_app.command("diff")
@user_errors
def registry_diff(a: str, b: str, as_json: JsonOption = False) -> None:
    """Two versions side by side: metrics with deltas, lineage and files that differ."""
    from flows.report import console, rich_table

    registry = _registry()
    left, right = registry.resolve(a), registry.resolve(b)
    metrics = [{"metric": m, "a": left.metrics.get(m), "b": right.metrics.get(m),
                "delta": (right.metrics[m] - left.metrics[m]) if m in left.metrics and m in right.metrics else None}
               for m in sorted(set(left.metrics) | set(right.metrics))]
    lineage = [{"field": k, "a": left.lineage.get(k), "b": right.lineage.get(k)}
               for k in sorted((set(left.lineage) | set(right.lineage)) - {"metrics"})
               if left.lineage.get(k) != right.lineage.get(k)]
    files = [{"file": f, "change": "added" if f not in left.files else "removed" if f not in right.files else
              "changed" if left.files[f].sha256 != right.files[f].sha256 else "same"}
             for f in sorted(set(left.files) | set(right.files))]
    if as_json:
        return emit_json({"a": f"{left.name}:{left.version}", "b": f"{right.name}:{right.version}",
                          "metrics": metrics, "lineage": lineage, "files": files})

    def fmt(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"

    title = f"{left.name}:{left.version} -> {right.name}:{right.version}"
    console.print(rich_table(f"metrics {title}", ["metric", "a", "b", "delta"],
                             [(m["metric"], fmt(m["a"]), fmt(m["b"]), fmt(m["delta"], True)) for m in metrics]))
    console.print(rich_table("lineage that differs", ["field", "a", "b"],
                             [(x["field"], json.dumps(x["a"]), json.dumps(x["b"])) for x in lineage]))
    console.print(rich_table("files", ["file", "change"], [(f["file"], f["change"]) for f in files]))


@registry_app.command("history")
@user_errors
def registry_history(name: str, as_json: JsonOption = False) -> None:
    """The audit log of a model: every registration, alias move, refusal, rollback and archive."""
    from flows.report import console, rich_table

    events = _registry().events(name)
    if as_json:
        return emit_json([e.model_dump() for e in events])
    console.print(rich_table(f"history of {name}", ["at", "event", "version", "alias", "actor", "reason", "details"],
                             [(e.at[:23], e.event, e.version or "", e.alias or "", e.actor, e.reason,
                               ", ".join(f"{k}={v}" for k, v in e.details.items() if v is not None))
                              for e in events]))


@registry_app.command("import-hf")
@user_errors
def registry_import_hf(
    directory: Annotated[Path, typer.Argument(help="a CLIP or SigLIP checkpoint in Hugging Face format")],
    name: Annotated[str, typer.Argument(help="model name in the registry")],
) -> None:
    """Register a pretrained CLIP/SigLIP checkpoint as a new version (evaluate it before promoting)."""
    import tempfile

    from components.models.pretrained import import_hf_checkpoint

    artifact = import_hf_checkpoint(directory)
    with tempfile.TemporaryDirectory() as tmp:
        record = _registry().register(name, artifact.save(Path(tmp) / "artifact"),
                                      lineage=artifact.lineage.model_dump(mode="json"),
                                      tags={"source": "huggingface", "family": artifact.config.family},
                                      reason=f"imported from {directory.name}")
    typer.echo(f"{name}:{record.version} ({artifact.config.family}, embed_dim {artifact.config.embed_dim})")


@registry_app.command("promote")
@user_errors
def registry_promote(
    name: str, version: int, alias: str = "production", reason: str = "",
    force: Annotated[str | None, typer.Option(help="override a missing or failed gate; the REASON is recorded")] = None,
    policy: Annotated[Path | None, typer.Option(help="gate policy whose non-regression rules apply")] = None,
) -> None:
    """Move ALIAS to VERSION; refused unless its gate passed and it does not regress against the holder."""
    from flows.promote import promote

    _registry().get_version(name, version)  # a bad reference fails before Prefect starts
    previous = promote(name, version, alias, reason, force, str(policy) if policy else None)
    typer.echo(f"{name}@{alias}: {previous or '-'} -> {version}")


@registry_app.command("rollback")
@user_errors
def registry_rollback(name: str, alias: str = "production", reason: str = "") -> None:
    """Move ALIAS back to the version that held it before."""
    from flows.promote import rollback

    alias_record = _registry().get_alias(name, alias)  # a bad name or alias fails before Prefect starts
    if alias_record is None or not alias_record.history:
        fail(f"{name}@{alias} has no earlier holder to roll back to")
    typer.echo(f"{name}@{alias} -> {rollback(name, alias, reason)}")


@registry_app.command("archive")
@user_errors
def registry_archive(name: str, version: int, reason: str = "") -> None:
    """Hide a version from listings and promotion (its files stay)."""
    _registry().archive(name, version, reason=reason)
    typer.echo(f"{name}:{version} archived")


@app.command("package")
@user_errors
def package_cmd(
    model_ref: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION")],
    gallery: Annotated[Path | None, typer.Option(help="dataset directory whose images `search` answers with")] = None,
    gallery_split: Annotated[str, typer.Option(help="the gallery dataset's split")] = "test",
    batching: Annotated[bool | None, typer.Option("--batching/--no-batching",
                                                  help="merge concurrent requests into one encoder call (default: on)")
                        ] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="items in one encoder call (default: 64)")] = None,
    max_latency_ms: Annotated[int | None, typer.Option(help="longest wait in the batch queue before a 503 "
                                                            "(default: 10000)")] = None,
) -> None:
    """Build a bento from a registry version and smoke-test it."""
    from components.data.manifest import MANIFEST_FILE
    from flows.package import package
    from serving.options import ServingOptions

    _registry().resolve(model_ref)  # a bad reference fails before Prefect starts
    if gallery is not None and not (gallery / MANIFEST_FILE).is_file():
        fail(f"--gallery {gallery}: not a dataset directory (no {MANIFEST_FILE}); give a directory that "
             "`alignops data` made or imported")
    given = {"batching": batching, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms}
    serving = ServingOptions(**{name: value for name, value in given.items() if value is not None})
    bento_tag, result = package(model_ref, str(gallery) if gallery else None, gallery_split, serving)
    typer.echo(f"{bento_tag}: smoke test {'passed' if result.passed else 'FAILED'}")


@app.command()
@user_errors
def serve(bento: str, port: int = 3000, host: str = "127.0.0.1") -> None:
    """Serve a built bento (`bentoml serve`)."""
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bentoml", "serve", bento, "--host", host,
                                      "--port", str(port)]))


@app.command()
@user_errors
def up(prefect_port: int = 4200, s3_port: int = 9555, pool: str = "alignops-local") -> None:
    """Start the local stack on 127.0.0.1 (Prefect server + UI, S3, a worker) and register the deployments."""
    from flows.report import console
    from infra.stack import up as start_stack

    with console.status("Starting the S3 server, the Prefect server and a worker; registering deployments"):
        stack = start_stack(alignops_home(), prefect_port, s3_port, pool)
    print_stack(stack)
    console.print(f"Prefect UI: [bold]{stack.ui_url or stack.prefect_api_url}[/bold]   (stop with `alignops down`)")


@app.command()
@user_errors
def down() -> None:
    """Stop exactly what `alignops up` started in this state directory."""
    from infra.stack import down as stop_stack

    stopped = stop_stack(alignops_home())
    typer.echo("\n".join(stopped) if stopped else "no stack was running")


@app.command()
@user_errors
def status() -> None:
    """What the local stack runs, and the deployments and scheduled runs its Prefect API holds."""
    from infra.stack import load_stack

    stack = load_stack(alignops_home())
    if stack is None:
        typer.echo(f"no stack in {alignops_home()}: start one with `alignops up`")
        raise typer.Exit(1)
    print_stack(stack)


def print_stack(stack) -> None:
    from flows.report import console, rich_table
    from infra.stack import describe_api

    console.print(rich_table(f"Stack {stack.id} in {stack.home}", ["service", "pid", "state", "address"],
                             [(s.name, s.pid, "running" if s.alive() else "[red]stopped[/red]", s.address or "")
                              for s in stack.services]))
    console.print(f"Registry {stack.registry}; DVC remote {stack.dvc_remote}; work pool {stack.pool}; "
                  f"logs in {stack.home / 'stack' / 'logs'}")
    console.print(describe_api(stack))


@app.command()
@user_errors
def deploy(pool: str = "alignops-local",
           image: Annotated[str | None, typer.Option(help="container image, for a Kubernetes pool")] = None) -> None:
    """Create or update every deployment on a work pool of the configured Prefect API (`PREFECT_API_URL`)."""
    import asyncio

    from flows.deployments import apply_deployments, ensure_process_pool, require_pool

    asyncio.run(require_pool(pool) if image else ensure_process_pool(pool))
    names = apply_deployments(pool, {"image": image} if image else None)
    typer.echo(f"{len(names)} deployments on work pool {pool}: " + ", ".join(names))
