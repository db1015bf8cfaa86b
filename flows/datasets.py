"""Datasets where a flow runs: task `materialise` (the newest version of a tracked dataset as a local
directory, for flows that run where it was not prepared: a worker, a schedule) and flow `version_dataset`
(track a directory with DVC, optionally listing it in the eval-set catalog)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.data.manifest import ManifestError, manifest_rows
from components.data.reference import DatasetRef
from core.containment import relative_path
from flows.settings import Platform
from infra.catalog import EvalSet, add_eval_set
from infra.workspace import DatasetVersion, checkout_version, dataset_version, directory_md5, track_dataset


@task(retries=2, retry_delay_seconds=5)
def materialise(dataset: str, workspace: Path) -> DatasetRef:
    """Dataset `dataset` of the opened DVC `workspace` at its newest version, as a local directory; checkouts
    are cached by hash under the state directory and pulled from the remote when missing."""
    version = dataset_version(workspace, dataset)
    target = Platform.from_env().dataset_cache / version.dvc_md5.removesuffix(".dir")
    if not target.is_dir() or directory_md5(target) != version.dvc_md5:
        checkout_version(workspace, version.ref, target)
    return DatasetRef(path=str(target), ref=version.ref, hash=version.dvc_md5)


def dataset_named(spec: str) -> DatasetRef:
    """A dataset argument, resolved once where a run starts: a directory (versioned when it is a tracked
    dataset of the workspace holding the committed bytes), or `PATH@REV` of the workspace, checked out once
    per hash under the state directory."""
    platform = Platform.from_env()
    if Path(spec).is_dir():
        manifest_rows(Path(spec))  # a directory that is no dataset fails here, before a flow starts; rows: validation
        return platform.dataset_ref(Path(spec))
    if "@" not in spec:
        raise ManifestError(f"{spec}: no such dataset directory, nor a PATH@REV of the workspace "
                            "(as `alignops data add` prints)")
    relative_path(spec.partition("@")[0], "dataset path")  # a version lives inside the workspace: no `..`, no /
    workspace = platform.open_workspace()
    platform.dataset_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=platform.dataset_cache) as tmp:
        md5 = directory_md5(checkout_version(workspace, spec, Path(tmp) / "data"))
        target = platform.dataset_cache / md5.removesuffix(".dir")
        if not target.is_dir():
            Path(tmp, "data").rename(target)
    return DatasetRef(path=str(target), ref=spec, hash=md5)


def on_this_machine(dataset: DatasetRef | None) -> DatasetRef | None:
    """A reference from a form or a schedule that names a version alone (`ref` = PATH@REV, no `path`), checked
    out where the flow runs; any other reference as it is."""
    return dataset if dataset is None or dataset.resolved else dataset_named(dataset.ref)


@flow(name="version_dataset", log_prints=True)
def version_dataset(dataset_dir: str, message: str = "", eval_set: EvalSet | None = None) -> DatasetVersion:
    """`dvc add` + git commit + `dvc push` a dataset directory inside the workspace; with `eval_set` (its
    `dataset` field is filled in), list it in the catalog the weekly re-evaluation measures."""
    workspace = Platform.from_env().open_workspace()
    version = track_dataset(workspace, Path(dataset_dir), message)
    listed = ""
    if eval_set is not None:
        add_eval_set(workspace, eval_set.model_copy(update={"dataset": version.path}))
        listed = f"\n\nListed as eval set `{eval_set.name}` ({eval_set.split}), re-measured weekly."
    create_markdown_artifact(key="dataset-version", description=f"{version.ref} versioned", markdown=(
        f"# Dataset `{version.ref}`\n\nDVC hash `{version.dvc_md5}`; {version.files} files, {version.size} bytes; "
        f"pushed to the DVC remote.{listed}"))
    return version
