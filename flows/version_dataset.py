"""Flow `version_dataset`: track a directory of the workspace with DVC (git commit + push to the remote),
optionally listing it in the eval-set catalog the weekly re-evaluation measures."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from flows.steps.platform import Platform
from infra.catalog import EvalSet, add_eval_set
from infra.workspace import DatasetVersion, track_dataset

DATASET_VERSIONED = "alignops.dataset.versioned"  # what a deployment watching a dataset is triggered by
DATASET_PATH = "alignops.dataset.path"


@flow(name="version_dataset", log_prints=True)
def version_dataset(dataset_dir: str, message: str = "", eval_set: EvalSet | None = None) -> DatasetVersion:
    """`dvc add` + git commit + `dvc push` a dataset directory inside the workspace; with `eval_set` (its
    `dataset` field is filled in), list it in the catalog the weekly re-evaluation measures. Announces the
    version (`alignops.dataset.versioned`), which the continual deployment is triggered by."""
    workspace = Platform.from_env().open_workspace()
    version = track_dataset(workspace, Path(dataset_dir), message)
    listed = ""
    if eval_set is not None:
        add_eval_set(workspace, eval_set.model_copy(update={"dataset": version.path}))
        listed = f"\n\nListed as eval set `{eval_set.name}` ({eval_set.split}), re-measured weekly."
    create_markdown_artifact(key="dataset-version", description=f"{version.ref} versioned", markdown=(
        f"# Dataset `{version.ref}`\n\nDVC hash `{version.dvc_md5}`; {version.files} files, {version.size} bytes; "
        f"pushed to the DVC remote.{listed}"))
    emit_event(event=DATASET_VERSIONED, resource={"prefect.resource.id": f"alignops.dataset.{version.path}",
                                                  DATASET_PATH: version.path},
               payload={"ref": version.ref, "hash": version.dvc_md5})
    return version
