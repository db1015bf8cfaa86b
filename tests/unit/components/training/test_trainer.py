import pandas as pd
import pytest
import torch
from jobs import job

from components.config import TrainConfig
from components.models.artifact import Lineage, ModelArtifact
from components.training.module import no_decay, warmup_cosine
from components.training.trainer import train


def test_warmup_then_cosine_to_zero():
    f = warmup_cosine(warmup_steps=10, max_steps=110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)


def test_no_weight_decay_on_norms_biases_and_logit_scale():
    assert no_decay("logit_scale", torch.nn.Parameter(torch.tensor(1.0)))
    assert no_decay("vision.encoder.layers.0.layer_norm1.weight", torch.nn.Parameter(torch.ones(4)))
    assert no_decay("text_projection.bias", torch.nn.Parameter(torch.ones(4)))
    assert not no_decay("text_projection.weight", torch.nn.Parameter(torch.ones(4, 4)))


@pytest.mark.slow
def test_train_checkpoints_logs_and_resumes(tiny_dataset, tmp_path, capfd):
    config = TrainConfig(optim={"max_steps": 6, "warmup_steps": 2}, data={"batch_size": 32},
                         logging={"checkpoint_every_n_steps": 3, "val_every_n_steps": 3})
    first = train(job(config, tiny_dataset, tmp_path / "run", lineage=Lineage(datasets={"train": "tiny@1"})))
    assert "anonymous setting" not in capfd.readouterr().err  # no W&B warning about Lightning's defaults
    assert first.resumed_from is None and first.artifact.lineage.training["steps"] == 6
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists() and first.loss_curve.stat().st_size > 0
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*")) and first.wandb_run_id
    records = next((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")).read_bytes()  # protobuf records
    assert all(key in records for key in (b"lineage", b"dataset_hashes", b"embed_dim", b"train/loss"))
    history = pd.read_csv(tmp_path / "run" / "logs" / "attempt-0" / "metrics.csv")
    assert history["val/loss"].notna().sum() == 2 and history["step"].max() == 5
    scale = first.artifact.model.logit_scale.item()
    assert 0 <= scale <= first.artifact.config.max_logit_scale

    longer = config.changed(optim={"max_steps": 9})
    resumed = train(job(longer, tiny_dataset, tmp_path / "run"))
    assert resumed.resumed_from == str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert resumed.artifact.lineage.training["steps"] == 9
    second = pd.read_csv(tmp_path / "run" / "logs" / "attempt-1" / "metrics.csv")
    assert second["step"].min() > 5 and len(pd.read_csv(tmp_path / "run" / "logs" / "attempt-0" / "metrics.csv"))
    saved = ModelArtifact.load(resumed.artifact.save(tmp_path / "artifact"))
    assert saved.lineage.config_hash == resumed.artifact.lineage.config_hash


@pytest.mark.slow
def test_quarantined_rows_are_not_trained_on(tiny_dataset, tmp_path):
    from components.data.manifest import read_manifest

    train_ids = read_manifest(tiny_dataset).query("split == 'train'")["sample_id"]
    config = TrainConfig(optim={"max_steps": 1}, data={"batch_size": 32}, logging={"wandb": False})
    with pytest.raises(ValueError, match=f"0 training rows .* after excluding {len(train_ids)} quarantined"):
        train(job(config, tiny_dataset, tmp_path / "run", exclude=frozenset(train_ids)))


@pytest.mark.slow
def test_a_time_budget_ends_training_cleanly_with_a_checkpoint_and_a_usable_artifact(tiny_dataset, tmp_path, capfd):
    config = TrainConfig(optim={"max_steps": 100_000, "warmup_steps": 2, "max_minutes": 0.1}, data={"batch_size": 16},
                         logging={"wandb": False, "checkpoint_every_n_steps": 100_000})
    lines = []
    result = train(job(config, tiny_dataset, tmp_path / "run"), report=lambda percent, line: lines.append(line))
    steps = result.artifact.lineage.training["steps"]
    assert 0 < steps < 100_000
    assert result.artifact.lineage.training["stopped"] == (f"time budget of 0.1 min spent after {steps} of 100000 "
                                                           "steps")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert checkpoint["global_step"] == steps  # re-running resumes where the budget ended it
    saved = ModelArtifact.load(result.artifact.save(tmp_path / "artifact"))
    assert torch.isfinite(saved.model.logit_scale).all()
    err = capfd.readouterr().err
    assert "[train] estimate: " in err and "the 0.1-minute budget fits about" in err and "Epoch" not in err
    assert lines[0].startswith("estimate: ") and all(line in err for line in lines)
