import shutil

import boto3
import pytest
import yaml

from infra.workspace import (
    VersioningError,
    checkout_version,
    directory_md5,
    init_workspace,
    track_dataset,
)

pytestmark = pytest.mark.slow


def edit_and_track(workspace, tiny_dataset):
    shutil.copytree(tiny_dataset, workspace / "tiny")
    first = track_dataset(workspace, workspace / "tiny")
    (workspace / "tiny" / "images" / "train" / "syn-train-00000.jpg").unlink()
    second = track_dataset(workspace, workspace / "tiny")
    return first, second


def test_track_push_and_new_version_on_change(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    shutil.copytree(tiny_dataset, workspace / "tiny")
    first = track_dataset(workspace, workspace / "tiny")
    assert first.dvc_md5 == directory_md5(tiny_dataset) and first.files == len(list(tiny_dataset.rglob("*.*")))
    assert list((tmp_path / "remote").rglob("*"))  # pushed
    again = track_dataset(workspace, workspace / "tiny")
    assert (again.dvc_md5, again.git_rev) == (first.dvc_md5, first.git_rev)  # nothing changed: same version
    (workspace / "tiny" / "images" / "train" / "syn-train-00000.jpg").unlink()
    changed = track_dataset(workspace, workspace / "tiny")
    assert changed.dvc_md5 != first.dvc_md5 and changed.git_rev != first.git_rev
    assert changed.ref == f"tiny@{changed.git_rev[:12]}"
    assert yaml.safe_load((workspace / "tiny.dvc").read_text())["outs"][0]["md5"] == changed.dvc_md5


def test_ref_resolves_to_exact_bytes_from_the_local_remote(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    first, second = edit_and_track(workspace, tiny_dataset)
    shutil.rmtree(workspace / ".dvc" / "cache")  # only the remote has the old bytes now
    old = checkout_version(workspace, first.ref, tmp_path / "old")
    assert directory_md5(old) == first.dvc_md5 == directory_md5(tiny_dataset)
    assert (old / "images" / "train" / "syn-train-00000.jpg").read_bytes() == \
        (tiny_dataset / "images" / "train" / "syn-train-00000.jpg").read_bytes()
    new = checkout_version(workspace, second.ref, tmp_path / "new")
    assert directory_md5(new) == second.dvc_md5 and not (new / "images" / "train" / "syn-train-00000.jpg").exists()


def test_s3_remote_on_moto(tiny_dataset, tmp_path, s3_bucket, moto_s3):
    workspace = init_workspace(tmp_path / "ws", f"s3://{s3_bucket}/dvc", endpoint_url=moto_s3.url)
    assert "endpointurl" not in (workspace / ".dvc" / "config").read_text()  # machine-specific: config.local
    first, _ = edit_and_track(workspace, tiny_dataset)
    stored = boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="dvc/")["KeyCount"]
    assert stored >= first.files
    shutil.rmtree(workspace / ".dvc" / "cache")
    assert directory_md5(checkout_version(workspace, first.ref, tmp_path / "old")) == first.dvc_md5


def test_bad_refs_are_explained(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    first, _ = edit_and_track(workspace, tiny_dataset)
    with pytest.raises(VersioningError, match="use PATH@REV"):
        checkout_version(workspace, "tiny", tmp_path / "x")
    with pytest.raises(VersioningError, match="no dataset 'other'"):
        checkout_version(workspace, f"other@{first.git_rev}", tmp_path / "y")


def test_dataset_outside_the_workspace_is_refused(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    with pytest.raises(VersioningError, match="must lie inside the workspace"):
        track_dataset(workspace, tiny_dataset)
