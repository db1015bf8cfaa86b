"""WiSE-FT weight mixing: exact at the ends, linear between."""

import torch
from safetensors.torch import load_file

from components.models.artifact import ModelArtifact
from flows.wise_ft import mix_weights


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
