"""LoRA through peft on both towers: only the adapters train, and merging them gives an ordinary model that
computes what the adapted one did."""

import pytest
import torch
from pydantic import ValidationError

from components.config import LoraSettings, ModelSection, preset
from components.models.dual_encoder import DualEncoder
from components.training.lora import add_lora, merged, parameter_counts


def inputs(config):
    generator = torch.Generator().manual_seed(0)
    size = config.vision.image_size
    tokens = torch.randint(4, 60, (3, config.tokenizer.context_length), generator=generator)
    tokens[:, 9] = config.tokenizer.eos_id
    return torch.randn(3, 3, size, size, generator=generator), tokens


@pytest.mark.parametrize("vision_kind,text_kind", [("clip_vit", "clip"), ("siglip_vit", "bert")])
def test_merged_model_computes_what_the_adapted_one_did(vision_kind, text_kind):
    config = preset("tiny")
    config.vision.kind, config.text.kind = vision_kind, text_kind
    torch.manual_seed(0)
    model = DualEncoder(config, load_pretrained=False)
    plain_names = set(model.state_dict())
    add_lora(model, LoraSettings(rank=4))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert any(n.startswith("vision.") for n in trainable) and any(n.startswith("text.") for n in trainable)
    with torch.no_grad():  # B starts at zero (the adapted model starts as the base): move it, as training would
        for name, parameter in model.named_parameters():
            if ".lora_B." in name:
                parameter.normal_(std=0.2)
    pixels, tokens = inputs(config)
    with torch.no_grad():
        adapted = model(pixels, tokens)
        plain = merged(DualEncoder(config, load_pretrained=False), LoraSettings(rank=4), model.state_dict())
        merged_out = plain(pixels, tokens)
    assert set(plain.state_dict()) == plain_names  # an ordinary model: its own parameter names, no adapters
    torch.testing.assert_close(merged_out.image_emb, adapted.image_emb, rtol=0, atol=1e-5)
    torch.testing.assert_close(merged_out.text_emb, adapted.text_emb, rtol=0, atol=1e-5)
    torch.manual_seed(0)
    with torch.no_grad():  # the adapters did change what the model computes: the merge carried them
        base = DualEncoder(config, load_pretrained=False)(pixels, tokens)
    assert (merged_out.image_emb - base.image_emb).abs().max() > 1e-3
    assert (merged_out.text_emb - base.text_emb).abs().max() > 1e-3


def test_trainable_parameters_are_counted_and_far_fewer():
    config = preset("tiny")
    model = DualEncoder(config, load_pretrained=False)
    full = parameter_counts(model)
    add_lora(model, LoraSettings(rank=2))
    counts = parameter_counts(model)
    # rank 2 on every q/k/v/out (width w -> w) and fc1/fc2 (w <-> 4w) of both towers' encoders
    vision, text = config.vision, config.text
    per_layer = lambda w: 4 * 2 * (w + w) + 2 * (w + 4 * w) * 2  # noqa: E731
    expected = vision.layers * per_layer(vision.width) + text.layers * per_layer(text.width)
    assert counts["trainable_params"] == expected
    assert counts["total_params"] == full["total_params"] + expected
    assert counts["optimizer_state_bytes"] == expected * 12


def test_targets_matching_nothing_and_lora_with_locks_are_refused():
    with pytest.raises(ValueError, match="match no layer of the vision tower"):
        add_lora(DualEncoder(preset("tiny"), load_pretrained=False), LoraSettings(targets=["nothing_here"]))
    with pytest.raises(ValidationError, match="tower locks do not apply"):
        ModelSection(lora=LoraSettings(), lock_image={"locked": True})
