"""An artifact's config.json comes from outside: unknown fields and unbounded sizes are refused before a
tower is built."""

import json

import pytest
from pydantic import ValidationError

from components.config import ModelConfig, preset
from components.models.artifact import ModelArtifact


def tampered(tiny_artifact, tmp_path, change) -> object:
    import shutil

    copy = shutil.copytree(tiny_artifact, tmp_path / "copy")
    config = json.loads((copy / "config.json").read_text())
    change(config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["tokenizer"].update(vocab_size=10**9), "less than or equal to 1000000"),
    (lambda c: c["vision"].update(width=8192, layers=128), "over the limit of 3 B"),
    (lambda c: c.update(surprise=1), "Extra inputs are not permitted"),
    (lambda c: c["text"].update(heads=0), "greater than or equal to 1"),
    (lambda c: c.update(image_std=[0.2, 0.0, 0.2]), "must be positive"),
    (lambda c: c["tokenizer"].update(eos_id=5000), "below vocab_size"),
    (lambda c: c.update(init_logit_scale="Infinity"), "finite number"),
])
def test_hostile_config_is_refused_before_building(tiny_artifact, tmp_path, change, message):
    with pytest.raises(ValidationError, match=message):
        ModelArtifact.load(tampered(tiny_artifact, tmp_path, change))


def test_shipped_presets_fit_the_bounds_and_the_estimate_is_close():
    from components.models.dual_encoder import DualEncoder

    tiny = preset("tiny")
    built = sum(p.numel() for p in DualEncoder(tiny).parameters())
    assert abs(tiny.parameter_estimate() - built) / built < 0.05
    for name in ("small", "base"):
        assert ModelConfig.model_validate_json(preset(name).model_dump_json()) == preset(name)
