"""Flow `version_dataset`: track a directory of the workspace with DVC (git commit + push to the remote),
optionally listing it in the eval-set catalog the weekly re-evaluation measures."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.steps.platform import Platform
from infra.catalog import EvalSet, add_eval_set
from infra.workspace import DatasetVersion, track_dataset


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
