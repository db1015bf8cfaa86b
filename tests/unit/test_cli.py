import json
import re

import pytest
from typer.testing import CliRunner

from flows.cli import app

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
    assert result.exit_code == 0 and "395 rows in = 395 kept (79 images) + 0 quarantined" in result.output
    (tmp_path / "t.csv").write_text("file,text\na.jpg,hi\n")
    result = invoke("data", "import", "csv", str(tmp_path / "t.csv"), str(tmp_path / "d"), "--column", "image=path")
    assert result.exit_code == 1 and "columns ['path', 'caption'] not found" in result.output


def test_user_errors_are_one_line_not_a_traceback(tmp_path):
    result = invoke("data", "validate", str(tmp_path))
    assert result.exit_code == 1 and "no manifest.parquet in" in result.output and "Traceback" not in result.output
    result = invoke("package", "../escape@production")
    assert result.exit_code == 1 and "invalid model name '../escape'" in result.output


@pytest.mark.slow
def test_data_import_add_get_shard(tiny_dataset, tmp_path):
    import shutil

    from flows.settings import Platform
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


@pytest.mark.slow
def test_package_with_a_gallery_and_serving_options(tiny_artifact, tiny_dataset, prefect_harness):
    import bentoml

    from flows.settings import Platform

    registry = Platform.from_env().registry()
    version = registry.register("cli-packaged", tiny_artifact, reason="package CLI test").version
    result = invoke("package", f"cli-packaged:{version}", "--gallery", str(tiny_dataset), "--max-batch-size", "8",
                    "--max-latency-ms", "2500")
    assert result.exit_code == 0 and "smoke test passed" in result.output, result.output
    bento_tag = re.search(r"^(alignops-embedding:\w+): smoke test passed$", result.output, re.M).group(1)
    args = bentoml.get(bento_tag).info.args
    assert (args["max_batch_size"], args["max_latency_ms"], args["batching"]) == (8, 2500, True)
    (packaged,) = [e for e in registry.events("cli-packaged") if e.event == "packaged"]
    assert packaged.details == {"bento": bento_tag, "smoke_passed": True}


def test_package_refuses_a_gallery_that_is_not_a_dataset(tiny_artifact, tmp_path):
    from flows.settings import Platform

    version = Platform.from_env().registry().register("cli-no-gallery", tiny_artifact, reason="test").version
    result = invoke("package", f"cli-no-gallery:{version}", "--gallery", str(tmp_path))
    assert result.exit_code == 1 and "not a dataset directory (no manifest.parquet)" in result.output
    result = invoke("package", f"cli-no-gallery:{version}", "--max-batch-size", "0")
    assert result.exit_code == 1 and "max_batch_size" in result.output and "Traceback" not in result.output


def test_package_help_states_the_serving_defaults():
    from serving.options import ServingOptions

    defaults = ServingOptions()
    help_text = " ".join(invoke("package", "--help").output.split())
    for name, shown in (("batching", "on" if defaults.batching else "off"), ("max_batch_size", defaults.max_batch_size),
                        ("max_latency_ms", defaults.max_latency_ms)):
        assert f"(default: {shown})" in help_text, name
