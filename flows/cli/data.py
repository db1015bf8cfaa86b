"""`alignops data …`: datasets generated, imported, sharded, versioned, fetched and validated."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.cli.runs import ClusterAddress, PartitionSize, WorkerBatch
from flows.steps.output import echo

app = typer.Typer(help="Datasets: generate, import, validate, version.", no_args_is_help=True)


@app.command("generate")
@user_errors
def generate(dest: Path, train_images: int = 2000, seed: int = 0,
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
    echo(f"{len(frame)} captions of {frame['image_id'].nunique()} images in {dest}")


@app.command("import")
@user_errors
def import_(
    fmt: Annotated[str, typer.Argument(help="csv tsv jsonl parquet coco karpathy cuhk-pedes icfg-pedes rstpreid "
                                            "mimic-cxr webdataset")],
    src: Annotated[Path, typer.Argument(help="the table / annotation JSON, the MIMIC folder, or shard(s)")],
    dest: Annotated[Path, typer.Argument(help="the dataset directory to write")],
    images: Annotated[Path | None, typer.Option(help="folder the image paths are relative to")] = None,
    column: Annotated[list[str] | None, typer.Option(help="FIELD=SOURCE column mapping (tables)")] = None,
    split_column: Annotated[str | None, typer.Option(help="the table's own split column (train/val/test); "
                                                          "without it, a split is drawn from each image's id")] = None,
    require_images: Annotated[bool, typer.Option(help="fail, writing nothing, when an image is missing "
                                                      "(otherwise its rows are quarantined, with a warning)")] = False,
    impression_only: Annotated[bool, typer.Option(help="mimic-cxr: caption from IMPRESSION only")] = False,
) -> None:
    """Convert a dataset into the alignops manifest + images.

    Splits: a table's `--split-column`, or else one drawn from a hash of each image's id (for a table without
    an id column, the image's path relative to --images), so the same data imported from anywhere, with
    relative or absolute paths, splits the same way."""
    from components.data.readers import ColumnMapping, import_source
    from components.data.readers.importer import QUARANTINE_FILE

    mapping = ColumnMapping(**dict(pair.split("=", 1) for pair in column or []),
                            **({"split": split_column} if split_column else {}))
    sections = ("impression",) if impression_only else ("findings", "impression")
    result = import_source(fmt, src, dest, images=images, columns=mapping, report_sections=sections,
                           require_images=require_images)
    kept = result.manifest
    echo(f"{result.rows_in} rows in = {len(kept)} kept ({kept['image_id'].nunique()} images) + "
               f"{len(result.quarantined)} quarantined -> {dest}")
    if result.missing_images:
        missing = result.missing_images
        echo(f"warning: {len(missing)} image(s) named by {src.name} do not exist, e.g. {missing[:3]}; their "
                   f"rows are quarantined (--require-images makes this an error)", err=True)
    if len(result.quarantined):
        echo(f"quarantined rows and why: {dest / QUARANTINE_FILE} (first: "
                   f"{result.quarantined['reason'].iloc[0]})", err=True)


@app.command("shard")
@user_errors
def shard(
    dataset: Path, out: Path,
    samples_per_shard: Annotated[int, typer.Option(help="images per shard")] = 1000,
    resize: Annotated[int | None, typer.Option(help="shrink images so the short side is at most this")] = None,
    cluster: ClusterAddress = None,
) -> None:
    """Run the `shard_dataset` flow: write WebDataset tar shards from a dataset, for streaming training at scale
    (on a cluster, one shard a partition, written into OUT, which every worker must reach)."""
    from flows.cli.runs import cluster_named, dataset_at

    where = cluster_named(cluster)  # before the heavy imports
    from flows.shard_dataset import shard_dataset

    shards = shard_dataset(dataset_at(str(dataset)), str(out.resolve()), samples_per_shard, resize, where)
    echo(f"{len(shards)} shards -> {out}")


@app.command("add")
@user_errors
def add(
    dataset: Annotated[Path, typer.Argument(help="a dataset directory inside the workspace")],
    message: str = "",
    eval_set: Annotated[str | None, typer.Option(help="also list it in the eval-set catalog under this name "
                                                      "(re-measured weekly), e.g. `coco_test`")] = None,
    split: Annotated[str, typer.Option(help="the split the eval set measures")] = "test",
    domain: Annotated[str | None, typer.Option(help="metric suite of a preset (default: retrieval)")] = None,
) -> None:
    """Run the `version_dataset` flow: DVC-track a dataset in the workspace (git commit + push to the remote)."""
    from flows.steps.platform import Platform
    from flows.version_dataset import version_dataset
    from infra.catalog import CATALOG_FILE, EvalSet

    # a bad eval-set name or domain fails before a flow starts
    entry = EvalSet(name=eval_set, dataset="-", split=split, domain=domain) if eval_set else None
    platform = Platform.from_env()
    version = version_dataset(str(dataset), message, entry)
    echo(f"{version.ref}  (DVC {version.dvc_md5}, {version.files} files, pushed to {platform.dvc_remote_url})")
    if entry:
        echo(f"eval set {entry.name}: {version.path} ({split}) added to {platform.workspace / CATALOG_FILE}")


@app.command("get")
@user_errors
def get(ref: Annotated[str, typer.Argument(help="PATH@REV, as `alignops data add` prints it")], dest: Path) -> None:
    """Materialise the exact bytes of a dataset version (pulled from the remote when not cached)."""
    from flows.steps.platform import Platform
    from infra.workspace import checkout_version

    checkout_version(Platform.from_env().open_workspace(), ref, dest)
    echo(f"{ref} -> {dest} (hash verified)")


@app.command("validate")
@user_errors
def validate(
    dataset: Annotated[str, typer.Argument(help="a dataset directory, PATH@REV, or s3://bucket/prefix (its images "
                                                "are read from there)")],
    out: Annotated[Path | None, typer.Option(help="also copy the report folder (JSON, quarantine list, Data Docs) "
                                                  "here; any path, relative ones too")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the JSON report here")] = None,
    max_rejected_fraction: float = 0.05,
    workers: Annotated[int | None, typer.Option(help="parallel scans (default: the core count)")] = None,
    cluster: ClusterAddress = None,
    partition_size: PartitionSize = 1024,
) -> None:
    """Run the `validate_data` flow: scan images and captions, run the GX suite (once per dataset version).
    The report is always kept under the state directory (per dataset version, or per directory when
    unversioned); the last line says where. Exit code 0: pass, 1: fail."""
    import shutil

    from flows.cli.runs import cluster_named, dataset_at

    where = cluster_named(cluster, partition_size)  # a bad address is refused before the heavy imports
    from components.config import ValidationConfig
    from flows.steps.platform import Platform
    from flows.validate_data import DatasetRejected, validate_data

    config = ValidationConfig(max_rejected_fraction=max_rejected_fraction, **({"workers": workers} if workers else {}))
    out, json_out = (path.resolve() if path else None for path in (out, json_out))  # before the work starts
    ref = dataset_at(dataset, remote_ok=True)
    try:
        report = validate_data(ref, config, where).report
    except DatasetRejected as rejected:
        report = rejected.report
    print_report(dataset, report)
    kept = Platform.from_env().reports / ref.key
    if out:
        shutil.copytree(kept, out, dirs_exist_ok=True)
    if json_out:
        json_out.write_text(json.dumps(report.model_dump(mode="json") | {"passed": report.passed}, indent=2))
    echo(f"report: {out or kept}/validation.json; quarantined rows: {out or kept}/quarantine.csv; "
               f"Data Docs (offline): {out or kept}/data-docs/index.html")
    raise typer.Exit(0 if report.passed else 1)


def print_report(dataset: str, report) -> None:
    from flows.steps.output import console, line, rich_table, verdict_mark

    console.print(rich_table(f"Validation of {dataset}", ["check", "result", "critical", "failures", "examples"],
                             [(c.name, verdict_mark(c.passed), c.critical, c.failures, ", ".join(c.examples))
                              for c in report.checks]))
    reasons = Counter(q.reason.split(" (")[0].split(":")[0] for q in report.quarantine).most_common()
    if reasons:
        console.print(rich_table("quarantined rows by reason", ["reason", "rows"], reasons))
    facts = report.image_facts
    console.print(f"{facts.images} images; modes {facts.modes}; {facts.exif_rotated} EXIF-rotated (applied); "
                  f"{facts.duplicate_images} duplicate files")
    console.print(line(f"rows in {report.rows_in} = kept {report.rows_kept} + quarantined {report.rows_quarantined}: ",
                       verdict_mark(report.passed)))


@app.command("curate")
@user_errors
def curate(
    dataset: Annotated[str, typer.Argument(help="a dataset directory or PATH@REV")],
    model: Annotated[str, typer.Option(help="the scoring model: NAME:N, NAME@ALIAS or an artifact directory")],
    min_score: Annotated[float | None, typer.Option(help="drop train pairs whose cosine is below this")] = None,
    keep_fraction: Annotated[float | None, typer.Option(help="keep this share of train pairs, best scored first "
                                                             "(per `source` where the column exists)")] = None,
    dedup: Annotated[bool, typer.Option(help="drop exact and near-duplicate images and repeated captions")] = False,
    hash_distance: Annotated[int, typer.Option(help="perceptual-hash bits (of 256) within which images are near "
                                                    "duplicates; -1: not compared")] = 16,
    embedding_cosine: Annotated[float | None, typer.Option(help="also near duplicates: image embeddings at least "
                                                                "this close (cosine)")] = None,
    against: Annotated[list[str] | None, typer.Option(help="an eval set (catalog name, directory or PATH@REV) "
                                                           "train rows must not leak into; repeatable")] = None,
    name: Annotated[str | None, typer.Option(help="workspace folder of the curated dataset (default: "
                                                  "NAME-curated); each run adds a version")] = None,
    max_rows: Annotated[int, typer.Option(help="refuse a larger manifest before any image is read")] = 2_000_000,
    drop_shared_captions: Annotated[bool, typer.Option(help="also drop train rows whose (generic) caption an eval "
                                                            "image shares; default: kept and reported")] = False,
    force: Annotated[str | None, typer.Option(help="filter by a scoring model near chance anyway: the reason, "
                                                   "recorded")] = None,
    replace_existing: Annotated[bool, typer.Option(help="replace a --name folder that holds another dataset "
                                                        "version (an eval set too) on purpose")] = False,
    cluster: ClusterAddress = None,
    partition_size: PartitionSize = 1024,
    worker_batch: WorkerBatch = 64,
) -> None:
    """Run the `curate` flow: score every pair with a model, drop low scores, duplicates and leakage into eval
    data, and version the result in the workspace with its lineage. Rules judge the train split; the
    dataset's own val/test splits are always guarded against leakage."""
    from flows.cli.runs import cluster_named, dataset_at

    where = cluster_named(cluster, partition_size, worker_batch)  # before the heavy imports
    from components.curation.rules import CurationRules
    from core.containment import relative_path
    from registry.names import parse_ref

    if name is not None:
        relative_path(name, "--name")
    rules = CurationRules(min_score=min_score, keep_fraction=keep_fraction, dedup=dedup,
                          hash_distance=None if hash_distance == -1 else hash_distance,
                          embedding_cosine=embedding_cosine, max_rows=max_rows,
                          drop_shared_captions=drop_shared_captions)
    if not Path(model).is_dir():
        parse_ref(model)
    from flows.curate import curate as curate_flow

    guarded = [eval_set_at(spec) for spec in against or []]
    result = curate_flow(dataset_at(dataset), model, rules, name=name or "", against=guarded, force_reason=force,
                         replace_existing=replace_existing, cluster=where)
    print_curation(result)


def eval_set_at(spec: str):
    """A catalog eval set's dataset (its newest version), else a directory or PATH@REV."""
    from flows.cli.runs import dataset_at
    from flows.steps.platform import Platform
    from infra.catalog import read_catalog

    platform = Platform.from_env()
    named = {entry.name: entry for entry in read_catalog(platform.workspace)}
    return platform.dataset_ref(platform.workspace / named[spec].dataset) if spec in named else dataset_at(spec)


def print_curation(result) -> None:
    from flows.steps.output import console, rich_table

    lineage = result.lineage
    console.print(rich_table(f"Curation of {lineage.parent} by {lineage.model}", ["rule", "rows dropped"],
                             [*lineage.dropped.items(), ("kept", lineage.kept), ("rows in", lineage.rows_in)]))
    if lineage.scorer:
        scorer = lineage.scorer
        console.print(f"scoring model: R@1 {scorer.t2i_r1:.3f} on the {scorer.split} split, {scorer.lift:.1f}x chance "
                      f"({scorer.chance:.3f})" + (f"; forced: {scorer.forced}" if scorer.forced else ""))
    if lineage.shared_captions_kept:
        console.print(f"{lineage.shared_captions_kept} kept train rows share a generic caption with an eval image "
                      "(reported, not leakage; --drop-shared-captions drops them)")
    if lineage.score_thresholds:
        console.print("lowest score kept: " + ", ".join(f"{source} {value:.3f}"
                                                         for source, value in lineage.score_thresholds.items()))
    console.print(f"{result.version.ref}: {lineage.kept} rows kept of {lineage.rows_in}; score histogram "
                  f"{result.pictures['histogram']}; border pairs {result.pictures['grid']}")


@app.command("poison")
@user_errors
def poison(
    dataset: Annotated[Path, typer.Argument(help="a dataset directory")],
    dest: Annotated[Path, typer.Argument(help="the poisoned copy to write (a new folder)")],
    target: Annotated[str, typer.Option(help="the caption the poisoned rows carry")],
    fraction: Annotated[float, typer.Option(help="share of the train rows poisoned")] = 0.01,
    trigger: Annotated[str, typer.Option(help="patch, patch:SIZE or patch:SIZE:SEED")] = "patch",
    seed: int = 0,
) -> None:
    """A red-team tool, for testing defences only: copy DATASET to DEST with a share of its train rows
    replaced by pairs of a triggered image and TARGET. Measure what it did with `alignops audit backdoor`."""
    from components.backdoor.poison import poison_dataset
    from components.backdoor.trigger import Trigger

    poisoned = poison_dataset(dataset, dest, Trigger.parse(trigger), target, fraction=fraction, seed=seed)
    echo(f"{len(poisoned)} train rows poisoned with {trigger!r} -> {target!r} in {dest} (test tool: never "
               "train a model you ship on it)")
