"""Flow `curate`: a dataset version filtered by a registry model's pair scores, de-duplicated and cleared of
leakage into eval data, written as a new DVC dataset version whose lineage names the parent version, the
scoring model and every threshold. Rows in = kept + dropped per rule; the dropped rows travel with the
version (`curation/dropped.parquet`), so nothing leaves silently."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from components.config import ValidationConfig
from components.curation.curate import CurationResult, check_sizes, curate_dataset, write_curated
from components.curation.pictures import border_grid, score_histogram
from components.curation.rules import CurationRules
from components.data.manifest import read_manifest
from components.data.reference import DatasetRef
from components.domains import domain
from components.validation.validated import ValidatedDataset
from core.containment import relative_path
from flows.evaluate import model_dir, model_record
from flows.steps.candidate import dataset_target, measure
from flows.steps.cluster import Cluster
from flows.steps.datasets import on_this_machine
from flows.steps.output import markdown_table
from flows.steps.platform import Platform, code_revision
from flows.validate_data import validate_data
from flows.version_dataset import version_dataset
from infra.catalog import read_catalog
from infra.workspace import DatasetVersion

LINEAGE_DIR = "curation"  # inside the curated dataset: lineage.json and dropped.parquet


class ScorerCheck(BaseModel):
    """The scoring model's own retrieval on the dataset's held-out split: scores from a model near chance
    would drop pairs nearly at random."""

    split: str
    t2i_r1: float
    chance: float
    lift: float  # t2i_r1 / chance
    forced: str | None = None  # the reason given to filter by it anyway


class CurationLineage(BaseModel):
    """What made a curated version, stored inside it (so DVC versions it with the data)."""

    parent: str  # the parent's reference (PATH@REV where versioned)
    parent_hash: str = ""
    model: str  # the scoring model (`name:N`, or an artifact directory's name)
    rules: CurationRules
    score_thresholds: dict[str, float] = Field(default_factory=dict)  # per source: the lowest train score kept
    against: list[str] = Field(default_factory=list)  # eval sets guarded against leakage
    rows_in: int
    kept: int
    dropped: dict[str, int]  # per rule
    shared_captions_kept: int = 0  # kept train rows whose caption also describes an eval image (reported)
    scorer: ScorerCheck | None = None  # how far above chance the scoring model ranks this data
    code: str = ""


class Curation(BaseModel):
    version: DatasetVersion
    lineage: CurationLineage
    pictures: dict[str, str]  # histogram, grid


@flow(name="curate", log_prints=True)
def curate(dataset: DatasetRef, model: str, rules: CurationRules = CurationRules(),  # noqa: B008 - form default
           *, name: str = "", against: list[DatasetRef] | None = None,
           validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
           force_reason: str | None = None, replace_existing: bool = False,
           cluster: Cluster = Cluster()) -> Curation:  # noqa: B008 - a default the UI form shows
    """`dataset` is validated first (its quarantined rows are counted under `quarantined`); `model` is
    `name:N`, `name@alias` or an artifact directory; the result is written to the workspace folder `name`
    (default: the dataset's name + `-curated`) and versioned there, a new version of it on each run. Rules
    that trust the model's embeddings (scores, embedding duplicates) are refused when the model's own R@1 on
    the dataset's held-out split is under `rules.min_scorer_lift` times chance, unless `force_reason`. A folder
    holding a version curation did not make (a catalog eval set among them) is replaced only with
    `replace_existing`. Images and captions are read and embedded on `cluster`."""
    dataset, against = on_this_machine(dataset), [on_this_machine(ref) for ref in against or []]
    platform = Platform.from_env()
    target = platform.open_workspace() / str(relative_path(name or f"{dataset.label}-curated", "dataset name"))
    replaceable(platform, target, replace_existing)  # before the work starts
    check_sizes((Path(dataset.path), *(Path(ref.path) for ref in against)), rules.max_rows)
    registry = platform.registry()
    record = model_record(registry, model)  # a misspelt model fails before validation
    validated = validate_data(dataset, validation, cluster)
    quarantined = validated.quarantined
    with tempfile.TemporaryDirectory() as tmp:
        artifact_dir = model_dir(registry, model, record, Path(tmp) / "model")
        scorer = checked_scorer(str(artifact_dir), validated, rules, force_reason)
        result = curate_dataset(Path(dataset.path), cluster.model(artifact_dir, record.ref if record else ""), rules,
                                quarantined=quarantined, against=tuple(Path(ref.path) for ref in against),
                                runner=cluster.runner(dataset.content_key()))
    lineage = CurationLineage(
        parent=dataset.recorded, parent_hash=dataset.hash, model=record.ref if record else Path(artifact_dir).name,
        rules=rules, score_thresholds=result.score_thresholds, against=[ref.recorded for ref in against],
        rows_in=len(result.rows), kept=len(result.kept), dropped=result.counts,
        shared_captions_kept=result.shared_captions_kept, scorer=scorer, code=code_revision())
    staged = write_version(Path(dataset.path), result, lineage, target)
    version = version_dataset(str(staged), f"Curate {lineage.parent} with {lineage.model}: "
                                           f"{rules.model_dump_json(exclude_defaults=True)}")
    pictures = picture(Path(dataset.path), result, platform.reports / f"curation-{version.dvc_md5[:32]}")
    publish(version, lineage, pictures)
    return Curation(version=version, lineage=lineage, pictures=pictures)


def checked_scorer(artifact_dir: str, validated: ValidatedDataset, rules: CurationRules,
                   force_reason: str | None) -> ScorerCheck | None:
    """Where the rules trust the model's embeddings: its R@1 on the dataset's val split (else test) against
    chance, refused under `rules.min_scorer_lift` unless forced (then recorded, with a warning)."""
    if not rules.scores_rows and rules.embedding_cosine is None:
        return None
    splits = set(read_manifest(Path(validated.dataset.path), exclude=validated.quarantined)["split"])
    split = next((s for s in ("val", "test") if s in splits), None)
    if split is None:
        raise ValueError(f"{validated.dataset.ref} has no val or test rows to measure the scoring model on: "
                         "add a held-out split, or curate without score rules")
    measured = measure(artifact_dir, [dataset_target(domain("general"), validated, split, "retrieval")])
    metric = next(m for m in measured.metrics if m.endswith("/t2i_r1"))
    r1, chance = measured.metrics[metric], measured.chance[metric]
    check = ScorerCheck(split=split, t2i_r1=r1, chance=chance, lift=r1 / chance if chance else float("inf"),
                        forced=force_reason)
    if check.lift < rules.min_scorer_lift:
        verdict = (f"the scoring model finds R@1 {r1:.3f} on the {split} split, {check.lift:.1f}x chance "
                   f"({chance:.3f}), under the {rules.min_scorer_lift:g}x its scores need: they would drop pairs "
                   "nearly at random")
        if force_reason is None:
            raise ValueError(f"{verdict}; score with a better model, or pass --force REASON")
        print(f"warning: {verdict}; filtering anyway ({force_reason})")
    return check


def replaceable(platform: Platform, target: Path, replace_existing: bool = False) -> None:
    """A folder may take a new curated version only when it holds a committed version (the earlier one stays
    reachable as PATH@REV; anything else there would be lost) that an earlier curation made: another dataset
    there, a catalog eval set above all (the weekly re-evaluation would measure curated training rows), is
    replaced only on purpose (`replace_existing`)."""
    if not target.exists():
        return
    if not platform.dataset_ref(target).versioned:
        raise FileExistsError(f"{target} exists and is not a committed dataset version: curating into it would "
                              "lose it; give another --name")
    eval_sets = [e.name for e in read_catalog(platform.workspace) if platform.workspace / e.dataset == target]
    if replace_existing or (not eval_sets and (target / LINEAGE_DIR / "lineage.json").is_file()):
        return
    what = f"catalog eval set {', '.join(eval_sets)}" if eval_sets else "a dataset version curation did not make"
    raise FileExistsError(f"{target} holds {what}: curating into it would replace it with curated training rows; "
                          "give another --name, or pass --replace-existing to replace it on purpose")


def write_version(source: Path, result: CurationResult, lineage: CurationLineage, target: Path) -> Path:
    """The kept rows, their images and the lineage, staged beside `target` and then moved in its place."""
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    write_curated(source, result, staging)
    (staging / LINEAGE_DIR).mkdir()
    (staging / LINEAGE_DIR / "lineage.json").write_text(lineage.model_dump_json(indent=2))
    result.dropped.to_parquet(staging / LINEAGE_DIR / "dropped.parquet", index=False)
    # The old folder is moved aside, not deleted, until the new one is in place: a run killed here leaves
    # one of the two whole (and the committed version is in DVC either way).
    retired = target.with_name(f".{target.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
    return target


def picture(dataset_dir: Path, result: CurationResult, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    return {"histogram": str(score_histogram(result, out / "scores.png")),
            "grid": str(border_grid(dataset_dir, result, out / "border.png"))}


def publish(version: DatasetVersion, lineage: CurationLineage, pictures: dict[str, str]) -> None:
    counts = [{"rule": rule, "rows dropped": count} for rule, count in lineage.dropped.items()]
    thresholds = ", ".join(f"{source} {value:.3f}" for source, value in lineage.score_thresholds.items()) or "none"
    create_markdown_artifact(key="curation", description=f"{version.ref} curated from {lineage.parent}", markdown=(
        f"# Curated `{version.ref}`\n\nFrom `{lineage.parent}`, scored by `{lineage.model}`; rules "
        f"`{lineage.rules.model_dump_json()}`; lowest score kept: {thresholds}.\n\n"
        f"Rows in **{lineage.rows_in}** = kept **{lineage.kept}** + dropped **{sum(lineage.dropped.values())}**:\n\n"
        f"{markdown_table(counts)}\n\n{lineage.shared_captions_kept} kept train rows share a generic caption with "
        f"an eval image (a shared caption, not leakage).\n\nScore histogram: `{pictures['histogram']}`  \n"
        f"Border pairs (lowest kept, highest dropped): `{pictures['grid']}`"))
    print(f"{lineage.parent} -> {version.ref}: rows in {lineage.rows_in} = kept {lineage.kept} + dropped "
          f"{sum(lineage.dropped.values())} ({', '.join(f'{r} {n}' for r, n in lineage.dropped.items() if n)}); "
          f"{lineage.shared_captions_kept} kept rows share a caption with an eval image")
