"""Datasets where a flow runs: `dataset_named` (a directory or PATH@REV, resolved once where a run starts),
`on_this_machine` (a reference by version alone, checked out where the flow runs) and task `materialise`
(the newest version of a tracked dataset as a local directory, for flows that run where it was not
prepared: a worker, a schedule)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from components.data.manifest import MANIFEST_FILE, ManifestError, manifest_rows
from components.data.reference import DatasetRef
from core.containment import relative_path
from flows.steps.platform import Platform
from infra.workspace import checkout_version, dataset_version, directory_md5

MAX_MANIFEST_FILE_BYTES = 1 << 30  # stored; what it decodes to is bounded again where it is read


@task(retries=2, retry_delay_seconds=5)
def materialise(dataset: str, workspace: Path) -> DatasetRef:
    """Dataset `dataset` of the opened DVC `workspace` at its newest version, as a local directory; checkouts
    are cached by hash under the state directory and pulled from the remote when missing."""
    version = dataset_version(workspace, dataset)
    target = Platform.from_env().dataset_cache / version.dvc_md5.removesuffix(".dir")
    if not target.is_dir() or directory_md5(target) != version.dvc_md5:
        checkout_version(workspace, version.ref, target)
    return DatasetRef(path=str(target), ref=version.ref, hash=version.dvc_md5)


def dataset_named(spec: str, *, remote_ok: bool = False) -> DatasetRef:
    """A dataset argument, resolved once where a run starts: a directory (versioned when it is a tracked
    dataset of the workspace holding the committed bytes), `PATH@REV` of the workspace, checked out once
    per hash under the state directory, or (where the command reads images where they live, `remote_ok`)
    `s3://bucket/prefix`, a dataset on S3 whose manifest alone is fetched."""
    platform = Platform.from_env()
    if spec.startswith("s3://"):
        if not remote_ok:
            raise ManifestError(f"{spec} is a dataset on S3: `data validate` and `gallery build` read it where it "
                                "lives; this command needs it on this machine (`aws s3 sync`, or `alignops data "
                                "add` to version it)")
        return on_s3(spec, platform.dataset_cache)
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


def on_s3(url: str, cache: Path) -> DatasetRef:
    """A dataset on S3: its manifest fetched (its size bounded first) into a folder named by the URL, its
    images left where they are. Unversioned: the manifest's digest names its bytes."""
    import hashlib

    from components.storage import s3_filesystem

    prefix = url.rstrip("/")
    folder = cache / ("s3-" + hashlib.sha256(prefix.encode()).hexdigest()[:24])
    manifest = f"{prefix}/{MANIFEST_FILE}"
    try:
        size = s3_filesystem().size(manifest)
    except FileNotFoundError:
        raise ManifestError(f"no {MANIFEST_FILE} at {prefix}: is this a dataset on S3?") from None
    if size > MAX_MANIFEST_FILE_BYTES:
        raise ManifestError(f"{manifest} is {size:,} bytes, over the limit of {MAX_MANIFEST_FILE_BYTES:,}: split the "
                            "dataset")
    folder.mkdir(parents=True, exist_ok=True)
    s3_filesystem().get_file(manifest, str(folder / MANIFEST_FILE))
    manifest_rows(folder)
    return DatasetRef(path=str(folder), ref=prefix, images=prefix)


def on_this_machine(dataset: DatasetRef | None) -> DatasetRef | None:
    """A reference from a form or a schedule that names a version alone (`ref` = PATH@REV, no `path`), checked
    out where the flow runs; a dataset on S3 with its manifest fetched here; any other reference as it is."""
    if dataset is not None and dataset.remote and not Path(dataset.path, MANIFEST_FILE).is_file():
        return on_s3(dataset.images, Platform.from_env().dataset_cache)  # resolved on another machine
    return dataset if dataset is None or dataset.resolved else dataset_named(dataset.ref)
