"""`alignops registry …` end to end: real flows on the Prefect test API, tables and --json."""

import hashlib
import json
import os

import pytest
from cli_invoke import invoke
from prefect_events import wait_for_alias_events

from flows.steps.platform import Platform

pytestmark = pytest.mark.slow
GATE = {"policy": "p", "passed": True, "rules": [{"rule": "floor", "passed": True, "reason": "m/x = 1 >= 0.5"}]}



@pytest.fixture
def model(tmp_path):
    registry = Platform.from_env().registry()
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    name = f"cli-{tmp_path.name[-12:].lower().strip('_-')}".replace("_", "-")
    registry.register(name, folder, metrics={"m/mean_recall": 0.5}, gate=GATE, tags={"team": "vision"},
                      lineage={"datasets": {"train": f"{name}-data@aaa"}})
    (folder / "config.json").write_text('{"changed": true}')
    registry.register(name, folder, metrics={"m/mean_recall": 0.4}, gate=GATE,
                      lineage={"datasets": {"train": f"{name}-data@bbb"}})
    registry.register(name, folder, gate={**GATE, "passed": False})
    return name


def test_promote_rollback_history(prefect_harness, model, tmp_path):
    promoted = invoke("registry", "promote", model, "1", "--reason", "first release")
    assert promoted.exit_code == 0, promoted.output
    assert f"{model}@production: - -> 1" in promoted.output

    policy = tmp_path / "policy.yaml"
    policy.write_text("name: strict\nnon_regression:\n  m/mean_recall: 0.05\n")
    regressed = invoke("registry", "promote", model, "2", "--policy", str(policy))
    assert regressed.exit_code == 1
    assert "m/mean_recall = 0.4000 < incumbent 0.5000 - 0.05" in regressed.output
    forced = invoke("registry", "promote", model, "2", "--policy", str(policy), "--force", "accepted by PM")
    assert forced.exit_code == 0
    refused = invoke("registry", "promote", model, "3")
    assert refused.exit_code == 1 and "gate verdict failed" in refused.output and "--force" in refused.output

    assert sorted(e.payload["version"] for e in wait_for_alias_events(model, 2)) == [1, 2]

    assert invoke("registry", "rollback", model, "--reason", "bad latency").output.strip().endswith(
        f"{model}@production -> 1")
    assert [e.payload["version"] for e in wait_for_alias_events(model, 3)][0] == 1  # newest first: the rollback
    assert "no earlier holder" in invoke("registry", "rollback", model).output
    history = json.loads(invoke("registry", "history", model, "--json").output)
    assert [e["event"] for e in history] == ["registered"] * 3 + [
        "promoted", "promotion_refused", "promoted", "promotion_refused", "rolled_back"]
    assert history[5]["details"]["forced"] == "accepted by PM" and history[-1]["reason"] == "bad latency"
    table = invoke("registry", "history", model).output
    assert "promotion_refused" in table and "bad latency" in table


def test_list_filters_show_diff_archive(model):
    listing = invoke("registry", "list", model)
    assert listing.exit_code == 0 and "0.500" in listing.output
    by_dataset = json.loads(invoke("registry", "list", "--dataset", f"{model}-data@aaa", "--json").output)
    assert [(r["name"], r["version"]) for r in by_dataset] == [(model, 1)]
    by_tag = json.loads(invoke("registry", "list", model, "--tag", "team=vision", "--json").output)
    assert [r["version"] for r in by_tag] == [1]
    by_metric = json.loads(invoke("registry", "list", model, "--metric", "m/mean_recall<0.45", "--json").output)
    assert [r["version"] for r in by_metric] == [2]
    assert "write it like" in invoke("registry", "list", "--metric", "m/x=~1").output

    shown = invoke("registry", "show", f"{model}:1")
    for expected in (f"{model}:1", "m/x = 1 >= 0.5", "config.json", f"{model}-data@aaa"):
        assert expected in shown.output
    assert json.loads(invoke("registry", "show", f"{model}:2", "--json").output)["metrics"] == {"m/mean_recall": 0.4}

    diff = json.loads(invoke("registry", "diff", f"{model}:1", f"{model}:2", "--json").output)
    assert diff["metrics"] == [{"metric": "m/mean_recall", "a": 0.5, "b": 0.4, "delta": pytest.approx(-0.1)}]
    assert diff["files"] == [{"file": "config.json", "change": "changed"}]
    assert diff["lineage"] == [{"field": "datasets", "a": {"train": f"{model}-data@aaa"},
                                "b": {"train": f"{model}-data@bbb"}}]
    assert "-0.1000" in invoke("registry", "diff", f"{model}:1", f"{model}:2").output

    assert invoke("registry", "archive", model, "3", "--reason", "broken").exit_code == 0
    assert [r["version"] for r in json.loads(invoke("registry", "list", model, "--json").output)] == [1, 2]
    assert len(json.loads(invoke("registry", "list", model, "--all", "--json").output)) == 3
    assert invoke("registry", "show", f"{model}@staging").exit_code == 1


def test_cli_on_an_s3_registry(s3_bucket, tmp_path, monkeypatch):
    from registry.registry import Registry

    url = f"s3://{s3_bucket}/team"
    (tmp_path / "config.json").write_text("{}")
    Registry.from_url(url).register("remote", tmp_path, gate=GATE)
    monkeypatch.setenv("ALIGNOPS_REGISTRY", url)
    listing = invoke("registry", "list", "--json")
    assert [(r["name"], r["version"]) for r in json.loads(listing.output)] == [("remote", 1)]
    assert url in invoke("registry", "list").output
    assert "testing" not in listing.output  # the access key of the test credentials


def test_import_hf_registers_a_checkpoint_with_its_family(tiny_dataset, tmp_path):
    from tests.unit.components.models.test_towers import hf_checkpoint

    hf_checkpoint("siglip", tmp_path / "hf", tiny_dataset)
    name = f"hf-{tmp_path.name[-10:].lower().strip('_-')}".replace("_", "-")
    result = invoke("registry", "import-hf", str(tmp_path / "hf"), name)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{name}:1 (siglip, embed_dim 64)")  # after transformers' progress bar
    record = Platform.from_env().registry().get_version(name, 1)
    assert record.tags == {"source": "huggingface", "family": "siglip", "embed_dim": "64"} and record.gate is None
    imported = record.lineage.model_extra["training"]["imported_from"]  # format, architecture, files by digest
    assert (imported["format"], imported["architecture"]) == ("hf", "siglip")
    files = imported["files"]
    assert files["config.json"] == hashlib.sha256((tmp_path / "hf" / "config.json").read_bytes()).hexdigest()
    assert "model.safetensors" in files and str(tmp_path) not in record.model_dump_json()  # no local path
    bad = invoke("registry", "import-hf", str(tmp_path), name)
    assert bad.exit_code == 1 and "config.json" in bad.output


def test_an_open_clip_folder_imports_and_exports_with_its_card(tiny_artifact, tmp_path, s3_bucket):
    """Our tiny model written in open_clip's hub layout (its own BPE: a Hugging Face tokenizer there), imported
    with the CLI, registered with a gate verdict, then exported as ONNX and transformers with the card."""
    import numpy as np
    import torch
    from transformers import CLIPModel

    from components.interop.export import export
    from components.interop.onnx import OnnxEncoders
    from components.models.artifact import ModelArtifact
    from components.models.embedder import Embedder

    artifact = ModelArtifact.load(tiny_artifact)
    export(artifact, "open_clip", tmp_path / "oc", "tiny:0")
    name = f"oc-{tmp_path.name[-10:].lower().strip('_-')}".replace("_", "-")
    imported = invoke("registry", "import-openclip", str(tmp_path / "oc"), name)
    assert imported.exit_code == 0, imported.output
    registry = Platform.from_env().registry()
    record = registry.get_version(name, 1)
    assert record.tags["source"] == "open_clip" and record.lineage.parent_model == "open_clip:oc"
    registry.register(name, registry.download(name, 1, tmp_path / "v1"), gate=GATE, metrics={"m/x": 1.0},
                      lineage=record.lineage.model_dump())

    assert invoke("registry", "export", f"{name}:2", "--format", "onnx", "--out", str(tmp_path / "onnx")).exit_code == 0
    card = (tmp_path / "onnx" / "README.md").read_text()
    assert "Gate verdict: **passed** under policy `p`" in card and "| m/x | 1.0000 |" in card
    assert record.lineage.model_extra["training"]["imported_from"]["files"]["weights"] in card  # sha256 of the source
    texts = ["a red square", "two blue circles"]
    onnx = Embedder.with_encoders(artifact.config, artifact.tokenizer, 1.0, OnnxEncoders(tmp_path / "onnx"))
    np.testing.assert_allclose(onnx.encode_texts(texts), Embedder(artifact).encode_texts(texts), atol=1e-4)

    assert invoke("registry", "export", f"{name}:1", "--format", "hf", "--out", str(tmp_path / "hf")).exit_code == 0
    hf = CLIPModel.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        features = hf.get_text_features(input_ids=artifact.tokenizer(texts))
    features = getattr(features, "pooler_output", features)
    np.testing.assert_allclose(torch.nn.functional.normalize(features, dim=-1),
                               Embedder(artifact).encode_texts(texts), atol=1e-5)
    again = invoke("registry", "export", f"{name}:1", "--format", "hf", "--out", str(tmp_path / "hf"))
    assert again.exit_code == 1 and "not an empty folder" in again.output
    unknown = invoke("registry", "export", f"{name}:1", "--format", "tflite", "--out", str(tmp_path / "x"))
    assert unknown.exit_code == 1 and "open_clip, hf or onnx" in unknown.output
    # to an object store, as a deployment's worker with no shared disk writes it
    import boto3

    url = f"s3://{s3_bucket}/exports/{name}"
    assert invoke("registry", "export", f"{name}:1", "--format", "open_clip", "--out", url).exit_code == 0
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]}
    wanted = ("open_clip_config.json", "open_clip_model.safetensors", "README.md")
    assert {f"exports/{name}/{f}" for f in wanted} <= keys
    taken = invoke("registry", "export", f"{name}:1", "--format", "onnx", "--out", url)
    assert taken.exit_code == 1 and "already holds files" in taken.output


def test_train_command_runs_the_pretrain_flow_from_a_yaml_config(prefect_harness, tiny_dataset, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("max_steps: 2\nbatch_size: 16\nwarmup_steps: 1\nwandb: false\n"
                      "objectives:\n  - {name: siglip}\n")
    run = f"cli-{tmp_path.name[-8:]}"
    result = invoke("train", str(tiny_dataset), "--config", str(config), "--run-name", run, "--name", "cli-train")
    assert result.exit_code in (0, 1), result.output  # 1: registered, its gate failed (2 steps)
    assert "cli-train:" in result.output.strip().splitlines()[-1]
    lineage = json.loads((Platform.from_env().runs / run / "artifact" / "lineage.json").read_text())
    assert lineage["training"]["steps"] == 2 and lineage["training"]["optim"]["objectives"][0]["name"] == "siglip"
    config.write_text("max_stepz: 2\n")
    typo = invoke("train", str(tiny_dataset), "--config", str(config))
    assert typo.exit_code == 1 and "max_stepz" in typo.output and "Extra inputs are not permitted" in typo.output
    assert "A TrainConfig has sections model:" in " ".join(typo.output.split())  # the shape to write instead


def test_finetune_command_checks_its_inputs_before_starting(tmp_path):
    assert invoke("finetune", "general", str(tmp_path), "--base", "Bad Name").exit_code == 1
    bad = invoke("finetune", "dermatology", str(tmp_path), "--general", str(tmp_path))
    assert bad.exit_code == 1 and "unknown preset 'dermatology'" in bad.output
    generated = invoke("data", "generate", str(tmp_path / "rs"), "--domain", "remote_sensing", "--train-images", "20")
    assert generated.exit_code == 0 and generated.output.strip().endswith(f"{tmp_path / 'rs' / 'dataset'}")
    missing = invoke("finetune", "remote_sensing", str(tmp_path / "rs" / "dataset"), "--general",
                     str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "nowhere" in missing.output


def test_show_tells_which_galleries_a_version_can_query(model, tmp_path):
    registry = Platform.from_env().registry()
    folder = tmp_path / "upgrade"
    (folder / "compat").mkdir(parents=True)
    (folder / "compat" / f"{model}-v1.safetensors").write_bytes(b"projection")
    upgraded = registry.register(model, folder, compatibility=[{
        "space": f"{model}:1", "via": "projection", "projection": f"compat/{model}-v1.safetensors",
        "metrics": {"xm/held/t2i_r1": 0.412}, "old_metrics": {"held/t2i_r1": 0.398}}])
    shown = invoke("registry", "show", upgraded.ref)
    assert shown.exit_code == 0, shown.output
    for expected in (f"{model}:{upgraded.version}", "own space", f"{model}:1", "projection",
                     "xm/held/t2i_r1 0.412 (old 0.398)"):
        assert expected in shown.output, expected


def test_a_promotion_waits_in_the_prefect_ui_until_an_approval_made_with_the_cli(prefect_harness, model, tmp_path,
                                                                                  monkeypatch):
    """From the CLI a promotion without its approval is refused at once; the deployed flow instead pauses
    (Prefect's pause with an input form). Bob makes a key and approves with the CLI, a person resumes the run
    with `approve: true`, and the promotion goes through with bob's approval counted and on record."""
    import shutil
    import threading
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateName
    from prefect.flow_runs import resume_flow_run

    from flows import promote as promote_module

    trusted = tmp_path / "trusted"
    shutil.copytree(Platform.from_env().trusted_keys, trusted)  # the suite's own key ("pytest") and, below, bob's
    policy = tmp_path / "access.yaml"
    policy.write_text("signatures_required_for: [production]\napprovals: {production: 1}\n")
    monkeypatch.setenv("ALIGNOPS_TRUSTED_KEYS", str(trusted))
    monkeypatch.setenv("ALIGNOPS_ACCESS_POLICY", str(policy))
    monkeypatch.setattr(promote_module, "APPROVAL_POLL_S", 1)  # the deployment polls every 10 s
    refused = invoke("registry", "promote", model, "1")
    assert refused.exit_code == 1
    assert "another identity runs `alignops registry approve" in refused.output
    assert "other than pytest (registrant) and pytest (trainer); it has 0" in refused.output

    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(moved=promote_module.promote(
        model, 1, reason="approved by bob", approval_wait_s=300)))
    run.start()
    paused = FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"])))
    deadline, waiting = time.monotonic() + 120, []
    while not waiting and time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            waiting = client.read_flow_runs(flow_run_filter=paused)
        time.sleep(0.5)
    assert len(waiting) == 1 and run.is_alive()
    assert Platform.from_env().registry().get_alias(model, "production") is None

    suite_key = os.environ["ALIGNOPS_SIGNING_KEY"]
    monkeypatch.setenv("ALIGNOPS_SIGNING_KEY", str(tmp_path / "bob" / "signing.pem"))
    created = invoke("keys", "create", "bob")
    assert created.exit_code == 0 and (trusted / "bob.pub").is_file(), created.output
    approved = invoke("registry", "approve", f"{model}:1", "--alias", "production", "--reason", "read the report")
    assert approved.output.strip() == f"{model}:1 approved for 'production' by bob (1 approval(s); the policy asks 1)"
    listed = invoke("keys", "list").output
    assert "bob" in listed and "pytest" in listed
    monkeypatch.setenv("ALIGNOPS_SIGNING_KEY", suite_key)

    resume_flow_run(waiting[0].id, run_input={"approve": True, "note": "bob approved"})
    run.join(timeout=120)
    assert not run.is_alive() and outcome["moved"].previous is None
    history = json.loads(invoke("registry", "history", model, "--json").output)
    approval, promotion = [e for e in history if e["event"] in ("approved", "promoted")]
    assert (approval["actor"], approval["actor_verified_by"]) == ("bob", "signature")
    assert promotion["details"]["approved_by"] == ["bob"] and promotion["details"]["signed_by"] == "pytest"
    assert "signing key" in invoke("registry", "history", model).output
    assert "; signed by pytest (verified)" in invoke("registry", "show", f"{model}:1").output
    assert json.loads(invoke("registry", "show", f"{model}:1", "--json").output)["signed_by"] == "pytest"
