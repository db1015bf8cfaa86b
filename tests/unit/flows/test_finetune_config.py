"""The finetune flow's training config: the preset's recipe, the user's fields over it, the mode's locks."""

import pytest

from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.domains import domain
from flows.finetune import FinetuneConfig, finetune_train_config


def config(**changes) -> FinetuneConfig:
    return FinetuneConfig(domain="person", dataset=DatasetRef(path="d", ref="d@1"), general=DatasetRef(path="g"),
                          **changes)


@pytest.mark.parametrize("mode,image,text", [
    ("full", (False, 0), (False, 0)), ("lit", (True, 0), (False, 0)), ("last_n", (True, 3), (True, 3))])
def test_modes_map_to_tower_locks(mode, image, text, tmp_path):
    train = finetune_train_config(config(mode=mode, unlocked_layers=3), domain("person"), tmp_path)
    assert (train.model.lock_image.locked, train.model.lock_image.unlocked_layers) == image
    assert (train.model.lock_text.locked, train.model.lock_text.unlocked_layers) == text
    assert train.model.init_from == str(tmp_path) and train.domain == "person"
    assert [o.name for o in train.optim.objectives] == ["identity"]  # the preset's default objective
    assert train.data.replay_fraction == 0.5  # of the job's replay dataset: the validated general data
    alone = finetune_train_config(config(mode=mode).model_copy(update={"general": None}), domain("person"), tmp_path)
    assert alone.data.replay_fraction == 0.0  # no general data, nothing replayed


def test_the_fields_a_user_sets_win_over_the_recipe_and_the_rest_stays_the_presets(tmp_path):
    train = finetune_train_config(config(train=TrainConfig(optim={"max_steps": 7})), domain("person"), tmp_path)
    assert train.optim.max_steps == 7 and train.model.init_from == str(tmp_path)
    assert train.optim.learning_rate == domain("person").learning_rate and train.data.images_per_identity == 4


def test_a_general_finetune_is_the_general_recipe(tmp_path):
    general = FinetuneConfig(domain="general", dataset=DatasetRef(path="d"), general=DatasetRef(path="g"))
    train = finetune_train_config(general, domain("general"), tmp_path)
    assert train.domain == "general" and not train.data.augment.enabled
    assert train.model.text_preprocessing is None and train.optim.max_steps == domain("general").finetune_steps


def test_distilling_from_a_version_trains_with_modx_against_its_download(tmp_path):
    train = finetune_train_config(config(), domain("person"), tmp_path / "base", tmp_path / "teacher")
    (objective,) = train.optim.objectives
    assert objective.name == "modx" and objective.options == {"old": str(tmp_path / "teacher")}
    assert train.model.init_from == str(tmp_path / "base")


@pytest.mark.parametrize("method,objective", [("finetune", "clip"), ("wiseft", "clip"), ("modx", "modx"),
                                              ("lora", "clip"), ("momentum", "momentum")])
def test_each_continual_method_is_one_phase_recipe(method, objective, tmp_path):
    from flows.continual import ContinualConfig, phase_config

    stream = ContinualConfig(phases=[DatasetRef(path="d")], method=method, method_options={"alpha": 0.3} if
                             method in ("modx", "momentum") else {}, lora={"rank": 2})
    train = phase_config(stream, domain("general"), tmp_path / "start", tmp_path / "teacher")
    assert train.model.init_from == str(tmp_path / "start") and train.domain == "general"
    assert [o.name for o in train.optim.objectives] == [objective]
    assert (train.model.lora is not None) == (method == "lora") and (method != "lora" or train.model.lora.rank == 2)
    if method == "modx":
        assert train.optim.objectives[0].options == {"old": str(tmp_path / "teacher"), "alpha": 0.3}
