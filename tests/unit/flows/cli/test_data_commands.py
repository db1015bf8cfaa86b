"""`alignops data …`: generate, validate, import, version, fetch, shard; failures as one line."""

import json

import pytest
from cli_invoke import invoke

from components.data.manifest import read_manifest


@pytest.mark.slow
def test_data_generate_then_validate_passes(prefect_harness, tmp_path):
    assert invoke("data", "generate", str(tmp_path / "ds"), "--train-images", "20").exit_code == 0
    result = invoke("data", "validate", str(tmp_path / "ds"), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert "rows in 1100 = kept 1100 + quarantined 0" in result.output  # (20 + 100 + 100) x 5
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True


def test_validate_keeps_its_report_copies_it_to_a_relative_out_and_its_data_docs_render_offline(
        prefect_harness, tmp_path, monkeypatch):
    import re

    from flows.steps.platform import Platform

    assert invoke("data", "generate", str(tmp_path / "ds"), "--train-images", "5").exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = invoke("data", "validate", "ds", "--out", "reports/mine")
    assert result.exit_code == 0, result.output
    kept = Platform.from_env().reports / Platform.from_env().dataset_ref(tmp_path / "ds").key
    for folder in (kept, tmp_path / "reports" / "mine"):
        assert json.loads((folder / "validation.json").read_text())["rows_in"] == (5 + 100 + 100) * 5
        assert (folder / "quarantine.csv").is_file()
        pages = list((folder / "data-docs").rglob("*.html"))
        assert len(pages) >= 2
        for page in pages:
            html = page.read_text()
            assert "alignops: offline styles" in html
            remote = re.findall(r"<(?:link|script|img)\b[^>]*(?:href|src)=[\"']https?://", html, re.IGNORECASE)
            assert remote == [], page
    assert f"report: {tmp_path / 'reports' / 'mine'}/validation.json" in " ".join(result.output.split())


@pytest.mark.slow
def test_validate_fails_with_exit_code_1_when_too_much_is_rejected(prefect_harness, tmp_path):
    invoke("data", "generate", str(tmp_path / "ds"), "--train-images", "5")
    for image in list((tmp_path / "ds" / "images" / "train").iterdir())[:3]:
        image.write_bytes(b"")
    result = invoke("data", "validate", str(tmp_path / "ds"), "--max-rejected-fraction", "0.01")
    assert result.exit_code == 1 and "rows in 1025 = kept 1010 + quarantined 15: FAIL" in result.output


def test_import_coco_and_name_the_bad_column(tmp_path, shared_data):
    root = shared_data / "coco-mini"
    result = invoke("data", "import", "coco", str(root / "annotations" / "captions_val2017.json"), str(tmp_path / "c"),
                    "--images", str(root / "val2017"))
    assert result.exit_code == 0 and "395 rows in = 395 kept (79 images) + 0 quarantined" in result.output
    (tmp_path / "t.csv").write_text("file,text\na.jpg,hi\n")
    result = invoke("data", "import", "csv", str(tmp_path / "t.csv"), str(tmp_path / "d"), "--column", "image=path")
    assert result.exit_code == 1 and "columns ['path', 'caption'] not found" in result.output


def test_import_warns_about_missing_images_and_takes_the_users_split_column(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.jpg")
    (tmp_path / "t.csv").write_text("image,caption,fold\na.jpg,red,TEST\nb.jpg,gone,train\nc.jpg,gone,val\n")
    result = invoke("data", "import", "csv", str(tmp_path / "t.csv"), str(tmp_path / "d"), "--split-column", "fold")
    assert result.exit_code == 0, result.output
    assert "3 rows in = 1 kept (1 images) + 2 quarantined" in result.output
    assert "warning: 2 image(s) named by t.csv do not exist, e.g. ['b.jpg', 'c.jpg']" in result.output
    assert read_manifest(tmp_path / "d")["split"].tolist() == ["test"]
    result = invoke("data", "import", "csv", str(tmp_path / "t.csv"), str(tmp_path / "e"), "--require-images")
    assert result.exit_code == 1 and "2 image(s) named by the annotations do not exist" in result.output
    assert not (tmp_path / "e").exists()


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    result = invoke("data", "validate", str(tmp_path))
    assert result.exit_code == 1 and "no manifest.parquet in" in result.output and "Traceback" not in result.output
    for hostile in ("../../etc@HEAD", "/etc@HEAD"):  # a version must lie inside the workspace
        result = invoke("data", "validate", hostile)
        assert result.exit_code == 1 and "dataset path" in result.output and "Traceback" not in result.output
    result = invoke("package", "../escape@production")
    assert result.exit_code == 1 and "invalid model name '../escape'" in result.output


@pytest.mark.slow
def test_data_import_add_get_shard(prefect_harness, tiny_dataset, tmp_path):
    import shutil

    from flows.steps.platform import Platform
    from infra.workspace import directory_md5

    workspace = Platform.from_env().open_workspace()
    shutil.copytree(tiny_dataset, workspace / "cli-tiny")
    added = invoke("data", "add", str(workspace / "cli-tiny"), "--message", "tiny for the CLI test")
    assert added.exit_code == 0, added.output
    ref = added.output.split()[0]
    assert ref.startswith("cli-tiny@") and directory_md5(tiny_dataset) in added.output
    got = invoke("data", "get", ref, str(tmp_path / "copy"))
    assert got.exit_code == 0 and directory_md5(tmp_path / "copy") == directory_md5(tiny_dataset)
    assert "shards" in invoke("data", "shard", str(tiny_dataset), str(tmp_path / "shards")).output
    back = invoke("data", "import", "webdataset", str(tmp_path / "shards"), str(tmp_path / "back"))
    assert back.exit_code == 0 and "980 rows in = 980 kept (196 images) + 0 quarantined" in back.output
    assert not (tmp_path / "back" / ".staging").exists()
    assert invoke("data", "get", "cli-tiny@0000000", str(tmp_path / "nope")).exit_code == 1
