"""The README's two walkthroughs, from the CLI, on real photographs and captions (coco-mini):

- "Bring your own data": a Kaggle-style `image,caption` CSV and an image folder -> `data import` ->
  `data validate` -> `train --name` (validated, trained, measured on the data's own test split, judged,
  registered) -> `evaluate --json`.
- "Start from a pretrained checkpoint": a Hugging Face CLIP directory (a small random one stands in for
  a download) -> `registry import-hf` -> `evaluate` (the zero-shot baseline) -> `finetune general --base`
  (the base measured on the same split, the parent in the lineage) -> `registry promote`.
"""

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from cli_invoke import invoke

from components.data.manifest import read_manifest
from flows.steps.platform import Platform
from serving.smoke import BentoServer

pytestmark = pytest.mark.slow

CONFIG = "data: {batch_size: 16}\nlogging: {wandb: false}\noptim: {warmup_steps: 2}\n"


def captions_csv(coco: Path, table: Path) -> None:
    """coco-mini as users get such data from Kaggle: one `image,caption` row per caption."""
    data = json.loads((coco / "annotations" / "captions_val2017.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    pd.DataFrame([{"image": files[a["image_id"]], "caption": a["caption"].strip()} for a in data["annotations"]]
                 ).to_csv(table, index=False)


def imported(shared_data, tmp_path) -> Path:
    captions_csv(shared_data / "coco-mini", tmp_path / "captions.csv")
    result = invoke("data", "import", "csv", str(tmp_path / "captions.csv"), str(tmp_path / "coco"),
                    "--images", str(shared_data / "coco-mini" / "val2017"), "--require-images")
    assert result.exit_code == 0 and "395 rows in = 395 kept (79 images) + 0 quarantined" in result.output
    return tmp_path / "coco"


def test_bring_your_own_data_from_a_captions_file_to_a_registered_model(prefect_harness, shared_data, tmp_path):
    dataset = imported(shared_data, tmp_path)
    manifest = read_manifest(dataset)
    assert manifest["image_id"].str.fullmatch(r"0+\d+\.jpg").all()  # portable ids: the file names, no local path
    validated = invoke("data", "validate", str(dataset))
    assert validated.exit_code == 0, validated.output
    (tmp_path / "train.yaml").write_text(CONFIG)
    name = f"coco-{tmp_path.name[-6:].lower().strip('_-')}".replace("_", "-")

    trained = invoke("train", str(dataset), "--name", name, "--config", str(tmp_path / "train.yaml"), "--steps", "8")
    assert trained.exit_code in (0, 1), trained.output  # 1: registered, but the gate failed
    test_images = manifest.loc[manifest["split"] == "test", "image_id"].nunique()
    assert f"coco_test: {test_images} images, {5 * test_images} captions" in trained.output
    record = Platform.from_env().registry().get_version(name, 1)
    assert record.gate is not None and record.gate.policy == "general"
    assert {r.rule for r in record.gate.rules} >= {"above_chance", "floor", "baseline", "non_regression"}
    assert record.lineage.datasets == {"train": "coco (unversioned)"} and record.lineage.parent_model is None
    assert str(tmp_path) not in record.model_dump_json()  # no local path in a record that leaves this machine
    assert "coco_test/t2i_r1" in record.metrics and not any("synthetic" in m for m in record.metrics)

    report = tmp_path / "eval.json"
    evaluated = invoke("evaluate", f"{name}:1", str(dataset), "--json", str(report))
    assert evaluated.exit_code in (0, 1), evaluated.output
    figures = json.loads(report.read_text())
    assert figures["metrics"] == record.metrics  # the same model on the same split: the same figures
    assert figures["chance"]["coco_test/t2i_r1"] == pytest.approx(1 / test_images)
    assert figures["sizes"] == {"coco_test": {"images": test_images, "captions": 5 * test_images}}
    refused = invoke("registry", "promote", name, "1", "--reason", "first model on our data")
    if not record.gate_passed:  # the walkthrough's refusal says what to do instead
        assert refused.exit_code == 1 and "alignops evaluate" in refused.output and "--force" in refused.output
    events = [e for e in Platform.from_env().registry().events(name) if e.event == "evaluated"]
    assert len(events) == 1 and events[0].details["verdict"]["passed"] == (evaluated.exit_code == 0)
    assert str(tmp_path) not in events[0].model_dump_json()


def test_start_from_a_pretrained_checkpoint_then_finetune_and_promote(prefect_harness, shared_data, tmp_path):
    from tests.unit.components.models.test_towers import hf_checkpoint

    dataset = imported(shared_data, tmp_path)
    hf_checkpoint("clip", tmp_path / "hf", dataset)
    name = f"clip-{tmp_path.name[-6:].lower().strip('_-')}".replace("_", "-")
    assert invoke("registry", "import-hf", str(tmp_path / "hf"), name).exit_code == 0

    zero_shot = tmp_path / "zero-shot.json"
    baseline = invoke("evaluate", f"{name}:1", str(dataset), "--json", str(zero_shot))
    assert baseline.exit_code in (0, 1) and "chance" in baseline.output, baseline.output
    base_figures = json.loads(zero_shot.read_text())["metrics"]

    (tmp_path / "finetune.yaml").write_text(CONFIG)
    tuned = invoke("finetune", "general", str(dataset), "--base", f"{name}:1", "--name", name, "--steps", "6",
                   "--config", str(tmp_path / "finetune.yaml"), "--mode", "lit")
    assert tuned.exit_code in (0, 1), tuned.output
    registry = Platform.from_env().registry()
    record = registry.get_version(name, 2)
    assert record.lineage.parent_model == f"{name}:1" and record.lineage.training["mode"] == "lit"
    assert {r.rule for r in record.gate.rules if r.rule == "baseline"} == {"baseline"}
    baseline_rule = next(r for r in record.gate.rules if r.rule == "baseline")
    assert f"parent {base_figures['coco_test/mean_recall']:.4f}" in baseline_rule.reason  # the zero-shot baseline

    for version, mode in ((3, "last_n"), (4, "full")):  # every mode works from an imported checkpoint
        again = invoke("finetune", "general", str(dataset), "--base", f"{name}:1", "--name", name, "--steps", "1",
                       "--config", str(tmp_path / "finetune.yaml"), "--mode", mode)
        assert again.exit_code in (0, 1), again.output
        assert registry.get_version(name, version).lineage.training["mode"] == mode

    promoted = invoke("registry", "promote", name, "2", "--reason", "walkthrough",
                      *([] if record.gate_passed else ["--force", "walkthrough on a 6-step finetune"]))
    assert promoted.exit_code == 0, promoted.output
    assert registry.get_alias(name, "production").version == 2

    packaged = invoke("package", f"{name}@production", "--gallery", str(dataset))
    assert packaged.exit_code == 0 and "smoke test passed" in packaged.output, packaged.output
    bento = packaged.output.strip().splitlines()[-1].split(": smoke test")[0]  # `alignops-embedding:TAG`
    with BentoServer(bento) as server:
        found = httpx.post(f"{server.url}/search", json={"texts": ["a plane on a lake"], "k": 3}, timeout=60).json()
    test_ids = set(read_manifest(dataset).query("split == 'test'")["image_id"])
    assert found["gallery_size"] == len(test_ids) and len(found["hits"][0]) == 3
    for hit in found["hits"][0]:  # portable ids and dataset-relative paths: nothing of this machine's folders
        assert hit["item"]["image_id"] in test_ids and hit["item"]["image"].startswith("images/")
        assert str(tmp_path) not in json.dumps(hit)
