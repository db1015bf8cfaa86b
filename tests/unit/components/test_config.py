"""The training config: sections, the flat shape of earlier releases, targeted changes."""

import pytest
import yaml
from pydantic import ValidationError

from components.config import TrainConfig

FLAT = """
preset: tiny
max_steps: 40
batch_size: 64
learning_rate: 0.002
warmup_steps: 5
objectives: [{name: siglip}]
lock_image: {locked: true}
devices: 2
strategy: ddp
checkpoint_every_n_steps: 20
wandb: false
seed: 3
"""


def test_a_flat_config_of_earlier_releases_loads_into_its_sections():
    config = TrainConfig.model_validate(yaml.safe_load(FLAT))
    assert config == TrainConfig(
        seed=3, model={"preset": "tiny", "lock_image": {"locked": True}},
        optim={"max_steps": 40, "learning_rate": 0.002, "warmup_steps": 5, "objectives": [{"name": "siglip"}]},
        data={"batch_size": 64}, scale={"devices": 2, "strategy": "ddp"},
        logging={"checkpoint_every_n_steps": 20, "wandb": False})


def test_a_flat_field_beside_its_section_joins_it_and_the_section_wins():
    config = TrainConfig.model_validate({"max_steps": 5, "optim": {"max_steps": 9, "learning_rate": 0.1}})
    assert config.optim.max_steps == 9 and config.optim.learning_rate == 0.1


def test_an_unknown_field_is_refused_by_name():
    with pytest.raises(ValidationError, match="max_stpes"):
        TrainConfig.model_validate({"max_stpes": 5})
    with pytest.raises(ValidationError, match="optim.max_stpes"):
        TrainConfig.model_validate({"optim": {"max_stpes": 5}})
    assert "optim: objectives, max_steps" in TrainConfig.shape()


def test_changed_touches_only_the_named_fields_and_keeps_what_was_set():
    config = TrainConfig(optim={"max_steps": 7}, scale={"devices": 4})
    changed = config.changed(scale={"launcher": "torchrun"}, logging={"checkpoint_dir": "s3://b/c"})
    assert changed.scale.devices == 4 and changed.scale.launcher == "torchrun"
    assert changed.logging.checkpoint_dir == "s3://b/c" and changed.optim.max_steps == 7
    assert config.scale.launcher == "in_process"  # the original is unchanged


def test_overlaid_puts_set_fields_over_layers_in_order():
    low, high = {"optim": {"max_steps": 1, "learning_rate": 0.5}}, {"optim": {"max_steps": 2}}
    resolved = TrainConfig(optim={"warmup_steps": 3}).overlaid(low, high)
    assert (resolved.optim.max_steps, resolved.optim.learning_rate, resolved.optim.warmup_steps) == (2, 0.5, 3)
