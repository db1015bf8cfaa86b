"""Presets: `general` is one of them, each has its gate policy, and each lays its choices under what the
user set, once."""

import pytest

from components.config import Augmentation, TrainConfig
from components.domains import DOMAINS, PRESETS, domain


def test_general_is_a_preset_and_the_domains_are_the_other_three():
    assert set(PRESETS) == {"general", "medical", "remote_sensing", "person"}
    assert set(DOMAINS) == set(PRESETS) - {"general"}
    assert domain("general").suite == "retrieval" and not domain("general").augment.enabled
    with pytest.raises(ValueError, match="unknown preset 'satellite'; choose from"):
        domain("satellite")


def test_a_preset_fills_what_the_user_left_unset_and_the_user_wins_where_set():
    user = TrainConfig(optim={"learning_rate": 0.01}, data={"num_workers": 2})
    resolved = domain("person").apply(user, finetune=True)
    assert resolved.optim.learning_rate == 0.01 and resolved.data.num_workers == 2  # the user's
    assert resolved.optim.max_steps == domain("person").finetune_steps  # the preset's recipe
    assert [o.name for o in resolved.optim.objectives] == ["identity"]
    assert resolved.data.images_per_identity == 4 and resolved.data.augment == Augmentation(crop=True)
    assert resolved.model.image_fit == "pad" and resolved.model.text_preprocessing == "plain"
    assert resolved.domain == "person" and resolved.optim.weight_decay == TrainConfig().optim.weight_decay


def test_training_without_finetuning_takes_only_the_data_and_text_choices():
    resolved = domain("medical").apply(TrainConfig(optim={"max_steps": 9}))
    assert resolved.optim.max_steps == 9 and resolved.optim.learning_rate == TrainConfig().optim.learning_rate
    assert resolved.data.augment == Augmentation(crop=True, grayscale=True)
    assert resolved.model.text_preprocessing == "medical"


def test_the_general_preset_changes_nothing_a_pretraining_run_does():
    config = TrainConfig(optim={"max_steps": 40}, data={"batch_size": 64})
    resolved = domain("general").apply(config)
    assert resolved.model_dump(exclude={"domain"}) == config.model_dump(exclude={"domain"})


def test_applying_twice_is_applying_once():
    once = domain("remote_sensing").apply(TrainConfig(), finetune=True)
    assert domain("remote_sensing").apply(once, finetune=True) == once
