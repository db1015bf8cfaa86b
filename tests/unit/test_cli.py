import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.settings import Platform

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_data_generate_then_validate_passes(tmp_path):
    assert invoke("data", "generate", str(tmp_path / "ds"), "--train-images", "20").exit_code == 0
    result = invoke("data", "validate", str(tmp_path / "ds"), "--json", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert "rows in 1100 = kept 1100 + quarantined 0" in result.output  # (20 + 100 + 100) x 5
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True


def test_validate_fails_with_exit_code_1_when_too_much_is_rejected(tmp_path):
    invoke("data", "generate", str(tmp_path / "ds"), "--train-images", "5")
    for image in list((tmp_path / "ds" / "images" / "train").iterdir())[:3]:
        image.write_bytes(b"")
    result = invoke("data", "validate", str(tmp_path / "ds"), "--max-rejected-fraction", "0.01")
    assert result.exit_code == 1 and "rows in 1025 = kept 1010 + quarantined 15: FAIL" in result.output


def test_import_coco_and_name_the_bad_column(tmp_path, shared_data):
    root = shared_data / "coco-mini"
    result = invoke("data", "import", "coco", str(root / "annotations" / "captions_val2017.json"), str(tmp_path / "c"),
                    "--images", str(root / "val2017"))
    assert result.exit_code == 0 and "395 rows, 79 images" in result.output
    (tmp_path / "t.csv").write_text("file,text\na.jpg,hi\n")
    result = invoke("data", "import", "csv", str(tmp_path / "t.csv"), str(tmp_path / "d"), "--column", "image=path")
    assert result.exit_code == 1 and "columns ['path', 'caption'] not found" in result.output


@pytest.mark.slow
def test_registry_list_show_promote(prefect_harness, tmp_path):
    registry = Platform.from_env().registry()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    gate = {"policy": "p", "passed": True, "rules": [{"rule": "floor", "passed": True, "reason": "m/x = 1 >= 0.5"}]}
    registry.register("cli-model", tmp_path / "a", metrics={"m/mean_recall": 0.5}, gate=gate, lineage={"datasets": {}})
    registry.register("cli-model", tmp_path / "a", gate={**gate, "passed": False})

    promoted = invoke("registry", "promote", "cli-model", "1", "--reason", "first release")
    assert promoted.exit_code == 0 and "cli-model@production: - -> 1" in promoted.output
    refused = invoke("registry", "promote", "cli-model", "2")
    assert refused.exit_code == 1 and "cannot be promoted" in refused.output and "--force" in refused.output
    listing = invoke("registry", "list", "cli-model")
    assert listing.exit_code == 0 and "production" in listing.output and "0.500" in listing.output
    shown = invoke("registry", "show", "cli-model@production")
    assert shown.exit_code == 0
    for expected in ("cli-model:1", "m/x = 1 >= 0.5", "config.json", "promotion_refused", "first release"):
        assert expected in shown.output
    assert invoke("registry", "show", "cli-model@staging").exit_code == 1


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    result = invoke("data", "validate", str(tmp_path))
    assert result.exit_code == 1 and "no manifest.parquet in" in result.output and "Traceback" not in result.output
    result = invoke("package", "../escape@production")
    assert result.exit_code == 1 and "invalid model name '../escape'" in result.output
