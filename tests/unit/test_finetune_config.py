"""The finetune flow's pure parts: training modes and WiSE-FT weight mixing."""

import pytest
import torch
from safetensors.torch import load_file

from components.models.artifact import ModelArtifact
from flows.finetune import FinetuneConfig, finetune_train_config, mix_weights


def config(**changes) -> FinetuneConfig:
    return FinetuneConfig(domain="person", dataset_dir="d", dataset_version="d@1", general_dataset_dir="g", **changes)


@pytest.mark.parametrize("mode,image,text", [
    ("full", (False, 0), (False, 0)), ("lit", (True, 0), (False, 0)), ("last_n", (True, 3), (True, 3))])
def test_modes_map_to_tower_locks(mode, image, text, tmp_path):
    train = finetune_train_config(config(mode=mode, unlocked_layers=3), tmp_path)
    assert (train.lock_image.locked, train.lock_image.unlocked_layers) == image
    assert (train.lock_text.locked, train.lock_text.unlocked_layers) == text
    assert train.init_from == str(tmp_path) and train.domain == "person"
    assert [o.name for o in train.objectives] == ["identity"]  # the preset's default objective


def test_overrides_replace_the_preset_defaults(tmp_path):
    from components.config import TrainConfig

    train = finetune_train_config(config(train=TrainConfig(max_steps=7)), tmp_path)
    assert train.max_steps == 7 and train.init_from == str(tmp_path)


def test_wise_ft_mix_is_exact_at_the_ends_and_linear_between(tiny_artifact, tmp_path):
    artifact = ModelArtifact.load(tiny_artifact)
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in artifact.model.parameters():
            parameter.add_(torch.randn_like(parameter))
    tuned = artifact.save(tmp_path / "tuned")
    base_w, tuned_w = load_file(str(tiny_artifact / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    for mix in (0.0, 0.25, 1.0):
        mixed = load_file(str(mix_weights(tiny_artifact, tuned, mix, tmp_path / f"m{mix}") / "model.safetensors"))
        for key in tuned_w:
            expected = {0.0: base_w[key], 1.0: tuned_w[key]}.get(mix, base_w[key] + 0.25 * (tuned_w[key] - base_w[key]))
            assert torch.equal(mixed[key], expected) if mix in (0.0, 1.0) else torch.allclose(mixed[key], expected)
    assert (tmp_path / "m0.25" / "tokenizer" / "tokenizer.json").exists()  # the rest is the tuned artifact's
