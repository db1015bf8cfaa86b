"""Task `materialise`: the newest version of a tracked dataset as a local directory, for flows that run
where the dataset was not prepared (a worker, a schedule)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from flows.settings import Platform
from infra.workspace import checkout_version, dataset_version, directory_md5


@task(retries=2, retry_delay_seconds=5)
def materialise(dataset: str, workspace: Path) -> tuple[str, str, str]:
    """(`path@rev`, DVC hash, a local directory with its bytes) of dataset `dataset` of the opened DVC
    `workspace`; checkouts are cached by hash under the state directory and pulled from the remote when
    missing."""
    platform = Platform.from_env()
    version = dataset_version(workspace, dataset)
    target = platform.home / "datasets" / version.dvc_md5.removesuffix(".dir")
    if not target.is_dir() or directory_md5(target) != version.dvc_md5:
        checkout_version(workspace, version.ref, target)
    return version.ref, version.dvc_md5, str(target)
