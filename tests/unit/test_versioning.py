import shutil

import pytest
import yaml

from components.data.versioning import VersioningError, init_workspace, track_dataset

pytestmark = pytest.mark.slow


def test_track_push_and_new_version_on_change(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    shutil.copytree(tiny_dataset, workspace / "tiny")
    first = track_dataset(workspace, workspace / "tiny")
    assert first.dvc_md5.endswith(".dir") and first.files == len(list(tiny_dataset.rglob("*.*")))
    assert list((tmp_path / "remote").rglob("*"))  # pushed
    again = track_dataset(workspace, workspace / "tiny")
    assert (again.dvc_md5, again.git_rev) == (first.dvc_md5, first.git_rev)  # nothing changed: same version
    (workspace / "tiny" / "images" / "train" / "syn-train-00000.jpg").unlink()
    changed = track_dataset(workspace, workspace / "tiny")
    assert changed.dvc_md5 != first.dvc_md5 and changed.git_rev != first.git_rev
    assert changed.ref == f"tiny@{changed.git_rev[:12]}"
    pointer = yaml.safe_load((workspace / "tiny.dvc").read_text())
    assert pointer["outs"][0]["md5"] == changed.dvc_md5


def test_dataset_outside_the_workspace_is_refused(tiny_dataset, tmp_path):
    workspace = init_workspace(tmp_path / "ws", str(tmp_path / "remote"))
    with pytest.raises(VersioningError, match="must lie inside the workspace"):
        track_dataset(workspace, tiny_dataset)
