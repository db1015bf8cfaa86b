"""The `curate` flow and `alignops data curate`: a new DVC version whose lineage names its parent, model and
thresholds, rows in = kept + dropped per rule, the dropped rows kept with it, leakage into eval data found."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_invoke import invoke
from PIL import Image

from components.curation.rules import RULES, CurationRules
from components.data.manifest import read_manifest, write_manifest
from flows.curate import CurationLineage, curate
from flows.steps.platform import Platform
from infra.workspace import checkout_version, dataset_version, track_dataset

pytestmark = pytest.mark.slow


def planted(tiny_dataset: Path, dest: Path) -> Path:
    """The tiny dataset with a test image copied (re-encoded as PNG) into train, and one train image's bytes
    again under a new id."""
    shutil.copytree(tiny_dataset, dest)
    manifest = read_manifest(dest)
    test_row = manifest[manifest["split"] == "test"].iloc[0]
    Image.open(dest / test_row["image"]).save(dest / "images" / "leaked.png")
    train_row = manifest[manifest["split"] == "train"].iloc[0]
    shutil.copyfile(dest / train_row["image"], dest / "images" / "again.jpg")
    extra = pd.DataFrame([train_row.to_dict() | {"sample_id": "leaked-0", "image": "images/leaked.png",
                                                 "image_id": "leaked", "caption": "a planted copy of a test image"},
                          train_row.to_dict() | {"sample_id": "again-0", "image": "images/again.jpg",
                                                 "image_id": "again", "caption": "the same bytes again"}])
    write_manifest(pd.concat([manifest, extra], ignore_index=True), dest)
    return dest


def test_curate_versions_the_kept_rows_with_their_lineage(prefect_harness, tiny_dataset, tiny_artifact, tmp_path):
    source = planted(tiny_dataset, tmp_path / "raw")
    platform = Platform.from_env()
    rules = CurationRules(keep_fraction=0.8, dedup=True, hash_distance=None)  # drawn shapes: exact copies only
    with pytest.raises(ValueError, match=r"scoring model finds R@1 .* chance .* pass --force REASON"):
        curate(platform.dataset_ref(source), str(tiny_artifact), rules, name="curated/tiny")  # untrained: refused
    assert not (platform.workspace / "curated" / "tiny").exists()
    result = curate(platform.dataset_ref(source), str(tiny_artifact), rules, name="curated/tiny",
                    force_reason="an untrained model, to test the mechanics")
    lineage = result.lineage
    assert lineage.scorer.split == "val" and lineage.scorer.lift < rules.min_scorer_lift
    assert lineage.scorer.forced == "an untrained model, to test the mechanics"
    assert lineage.rows_in == len(read_manifest(source)) == lineage.kept + sum(lineage.dropped.values())
    assert set(lineage.dropped) == set(RULES) and lineage.dropped["duplicate_image"] == 1
    assert lineage.dropped["leakage"] == 0  # pHash off: the re-encoded copy is not caught by bytes
    assert lineage.model == tiny_artifact.name and lineage.parent == "raw (unversioned)"
    assert lineage.rules == rules and set(lineage.score_thresholds) == {"synthetic"}

    workspace = platform.workspace
    version = dataset_version(workspace, "curated/tiny")
    assert version == result.version
    stored = checkout_version(workspace, version.ref, tmp_path / "checked-out")  # the bytes DVC keeps
    kept = read_manifest(stored)
    assert len(kept) == lineage.kept and (stored / kept["image"]).map(Path.is_file).all()
    assert CurationLineage.model_validate_json((stored / "curation" / "lineage.json").read_text()) == lineage
    dropped = pd.read_parquet(stored / "curation" / "dropped.parquet")
    assert dropped["rule"].value_counts().to_dict() == {r: n for r, n in lineage.dropped.items() if n}
    assert set(dropped["sample_id"]).isdisjoint(kept["sample_id"])
    train = kept[kept["split"] == "train"]
    assert set(kept[kept["split"] != "train"]["sample_id"]) == set(
        read_manifest(source).query("split != 'train'")["sample_id"])  # the yardstick is kept whole
    assert train["sample_id"].isin(dropped["sample_id"]).sum() == 0
    assert all(Path(p).is_file() for p in result.pictures.values())

    again = curate(platform.dataset_ref(source), str(tiny_artifact), CurationRules(dedup=True), name="curated/tiny")
    assert again.version.git_rev != version.git_rev
    again_dropped = pd.read_parquet(workspace / "curated" / "tiny" / "curation" / "dropped.parquet")
    assert again_dropped.set_index("sample_id").loc["leaked-0", "rule"] == "leakage"  # pHash on: found
    assert again.lineage.dropped["low_score"] == 0 and not again.lineage.score_thresholds
    assert read_manifest(checkout_version(workspace, version.ref, tmp_path / "first")).equals(kept)  # still there


def test_cli_curates_against_a_catalog_eval_set_and_refuses_to_overwrite(prefect_harness, tiny_dataset,
                                                                          tiny_artifact, tmp_path):
    platform = Platform.from_env()
    workspace = platform.open_workspace()
    source = planted(tiny_dataset, tmp_path / "raw")
    evalset = workspace / "evalsets" / "held-out"
    shutil.copytree(tiny_dataset, evalset)
    frame = read_manifest(evalset).assign(split="test")
    write_manifest(frame, evalset)  # another team's eval set: every row is test data...
    track_dataset(workspace, evalset)
    added = invoke("data", "add", str(evalset), "--eval-set", "held_out")
    assert added.exit_code == 0, added.output
    result = invoke("data", "curate", str(source), "--model", str(tiny_artifact), "--against", "held_out",
                    "--name", "curated/cli")
    assert result.exit_code == 0, result.output
    lineage = json.loads((workspace / "curated" / "cli" / "curation" / "lineage.json").read_text())
    train_rows = (read_manifest(source)["split"] == "train").sum()
    assert lineage["dropped"]["leakage"] == train_rows  # ...holding the very images we train on
    assert lineage["against"] == [platform.dataset_ref(evalset).ref]
    assert lineage["kept"] == lineage["rows_in"] - train_rows
    table = dict(re.findall(r"│ (\w[\w ]*?) +│ (\d+) +│", result.output))
    assert table["leakage"] == str(train_rows) and table["rows in"] == str(lineage["rows_in"])

    before = dataset_version(workspace, "evalsets/held-out")
    onto_eval_set = invoke("data", "curate", str(source), "--model", str(tiny_artifact), "--name", "evalsets/held-out")
    assert onto_eval_set.exit_code == 1 and "holds catalog eval set held_out" in onto_eval_set.output
    assert "--replace-existing" in onto_eval_set.output
    assert dataset_version(workspace, "evalsets/held-out") == before and read_manifest(evalset).equals(frame)

    (workspace / "not-a-version").mkdir()
    refused = invoke("data", "curate", str(source), "--model", str(tiny_artifact), "--name", "not-a-version")
    assert refused.exit_code == 1 and "is not a committed dataset version" in refused.output
    escaping = invoke("data", "curate", str(source), "--model", str(tiny_artifact), "--name", "../outside")
    assert escaping.exit_code == 1 and "must stay inside its folder" in escaping.output
    assert not (workspace.parent / "outside").exists()
    rows = len(read_manifest(source))
    oversized = invoke("data", "curate", str(source), "--model", str(tiny_artifact), "--name", "curated/small",
                       "--max-rows", str(rows - 1))
    assert oversized.exit_code == 1 and f"has {rows:,} rows, over the curation limit of {rows - 1:,}" in \
        oversized.output
    assert not (workspace / "curated" / "small").exists()
