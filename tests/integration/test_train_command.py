"""`alignops train` on a dataset versioned in the workspace: the reference is resolved once (its DVC hash
reaches the lineage), and validation scans a version once, however often it is trained on."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.data.reference import DatasetRef
from flows.cli import app
from flows.steps.platform import Platform
from flows.validate_data import validate_data
from infra.workspace import track_dataset

pytestmark = pytest.mark.slow

CONFIG = """
optim: {max_steps: 2, warmup_steps: 1}
data: {batch_size: 16}
logging: {wandb: false}
"""


def test_a_versioned_dataset_is_scanned_once_and_its_hash_is_in_the_lineage(prefect_harness, tiny_dataset,
                                                                           tmp_path, scans):
    workspace = Platform.from_env().open_workspace()
    dataset = workspace / f"train-cli-{tmp_path.name[-8:]}"
    shutil.copytree(tiny_dataset, dataset)
    (dataset / "README.txt").write_text(f"{dataset.name}: bytes of its own, so no other test's scan of a copy of the "
                                        "tiny dataset is this version's cached validation\n")
    version = track_dataset(workspace, dataset, "a dataset for `alignops train`")
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)

    runner = CliRunner()
    for run in ("first", "second"):
        result = runner.invoke(app, ["train", str(dataset), "--name", "train-cli", "--config", str(config),
                                     "--run-name", f"{dataset.name}-{run}"])
        assert result.exit_code in (0, 1), result.output  # 1: registered, its gate failed (2 steps)
        lineage = json.loads((Platform.from_env().runs / f"{dataset.name}-{run}" / "artifact" / "lineage.json"
                              ).read_text())
        assert lineage["datasets"] == {"train": version.ref}
        assert lineage["dataset_hashes"] == {"train": version.dvc_md5}
    assert scans == [dataset]  # the second run found the version's validation cached

    (dataset / "extra.txt").write_text("a change the workspace has not committed")
    result = runner.invoke(app, ["train", str(dataset), "--name", "train-cli", "--config", str(config), "--run-name",
                                 f"{dataset.name}-3"])
    assert result.exit_code in (0, 1), result.output
    lineage = json.loads((Platform.from_env().runs / f"{dataset.name}-3" / "artifact" / "lineage.json").read_text())
    assert lineage["dataset_hashes"] == {"train": ""} and len(scans) == 2  # changed bytes: unversioned, rescanned

    # By version alone, as a form or a schedule may name it: checked out once per hash, then validated (cached).
    validated = validate_data(DatasetRef(ref=version.ref))
    assert validated.dataset.hash == version.dvc_md5 and validated.dataset.ref == version.ref
    assert Path(validated.dataset.path).parent == Platform.from_env().dataset_cache and len(scans) == 2
    by_version = runner.invoke(app, ["data", "validate", version.ref])
    assert by_version.exit_code == 0 and "rows in" in by_version.output and len(scans) == 2


def test_train_skips_the_rows_validation_quarantined_instead_of_crashing(prefect_harness, tiny_dataset, tmp_path):
    from components.data.manifest import read_manifest

    dataset = tmp_path / "damaged"
    shutil.copytree(tiny_dataset, dataset)
    manifest = read_manifest(dataset)
    broken = manifest.loc[manifest["split"] == "train", "image"].unique()[:3]
    (dataset / broken[0]).unlink()  # missing
    for image in broken[1:]:
        (dataset / image).write_bytes(b"not an image")  # undecodable
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    run = f"damaged-{tmp_path.name[-8:]}"
    result = CliRunner().invoke(app, ["train", str(dataset), "--config", str(config), "--run-name", run,
                                      "--name", "damaged"])
    assert result.exit_code in (0, 1), result.output  # trained and registered; 1 = its gate failed (2 steps)
    lineage = json.loads((Platform.from_env().runs / run / "artifact" / "lineage.json").read_text())
    assert lineage["training"]["steps"] == 2
    record = Platform.from_env().registry().resolve("damaged")
    assert record.lineage.datasets == {"train": "damaged (unversioned)"}
