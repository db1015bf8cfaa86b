"""Image and text towers built from transformers configs, one builder per kind, all with SDPA attention.

Every tower is a transformers model, so gradient checkpointing and pretrained weights come from there;
`encoder_layers` exposes its blocks for locking (LiT) and `tower_outputs` reads pooled and token states.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedModel,
    SiglipTextConfig,
    SiglipTextModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from components.config import ModelConfig
from components.models.text_checkpoints import pretrained_text_dir

ATTENTION = "sdpa"


def _act(value: str | None) -> dict:
    return {"hidden_act": value} if value else {}


def build_vision_tower(config: ModelConfig) -> PreTrainedModel:
    v = config.vision
    common = dict(hidden_size=v.width, intermediate_size=int(v.width * v.mlp_ratio), num_hidden_layers=v.layers,
                  num_attention_heads=v.heads, image_size=v.image_size, patch_size=v.patch_size, **_act(v.hidden_act))
    if v.kind == "siglip_vit":
        return SiglipVisionModel(SiglipVisionConfig(**common, attn_implementation=ATTENTION))
    return CLIPVisionModel(CLIPVisionConfig(**common, attn_implementation=ATTENTION))


def build_text_tower(config: ModelConfig, load_pretrained: bool = True) -> PreTrainedModel:
    t, tok = config.text, config.tokenizer
    if t.kind == "bert":
        if t.pretrained and load_pretrained:
            # Dropout off, as in our own towers: training stays a function of the data order alone, which is
            # what makes resume bit-exact (Lightning does not checkpoint RNG state).
            return BertModel.from_pretrained(pretrained_text_dir(t.pretrained), add_pooling_layer=False,
                                             attn_implementation=ATTENTION, local_files_only=True,
                                             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        return BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=t.width, num_hidden_layers=t.layers,
                                    num_attention_heads=t.heads, intermediate_size=int(t.width * t.mlp_ratio),
                                    pad_token_id=tok.pad_id, max_position_embeddings=max(512, tok.context_length),
                                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                    attn_implementation=ATTENTION, **_act(t.hidden_act)), add_pooling_layer=False)
    common = dict(vocab_size=tok.vocab_size, hidden_size=t.width, intermediate_size=int(t.width * t.mlp_ratio),
                  num_hidden_layers=t.layers, num_attention_heads=t.heads, max_position_embeddings=tok.context_length,
                  pad_token_id=tok.pad_id, eos_token_id=tok.eos_id, attn_implementation=ATTENTION,
                  **_act(t.hidden_act), **({"bos_token_id": tok.sos_id} if tok.sos_id is not None else {}))
    if t.kind == "siglip":
        return SiglipTextModel(SiglipTextConfig(**common, projection_size=t.width))
    return CLIPTextModel(CLIPTextConfig(**common))


def tower_outputs(tower: PreTrainedModel, inputs: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled features, token states). BERT is mean-pooled over its non-padding tokens (as sentence-
    transformers pools MiniLM); CLIP pools at EOS, SigLIP through its heads."""
    if isinstance(tower, BertModel):
        mask = inputs != pad_id
        tokens = tower(input_ids=inputs, attention_mask=mask.long()).last_hidden_state
        pooled = (tokens * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        return pooled, tokens
    if isinstance(tower, (CLIPVisionModel, SiglipVisionModel)):
        out = tower(pixel_values=inputs)
    else:
        out = tower(input_ids=inputs)
    return out.pooler_output, out.last_hidden_state


def encoder_layers(tower: PreTrainedModel) -> nn.ModuleList:
    return tower.encoder.layers if hasattr(tower.encoder, "layers") else tower.encoder.layer


def lock_tower(tower: PreTrainedModel, unlocked_layers: int = 0) -> None:
    """LiT: freeze a tower except its last `unlocked_layers` blocks (and, when any are unlocked, the norms
    and heads that follow them)."""
    tower.requires_grad_(False)
    if unlocked_layers <= 0:
        return
    layers = encoder_layers(tower)
    if unlocked_layers > len(layers):
        raise ValueError(f"cannot unlock {unlocked_layers} layers of a {len(layers)}-layer tower")
    layer_ids = {id(p) for layer in layers for p in layer.parameters()}
    for layer in list(layers)[-unlocked_layers:]:
        layer.requires_grad_(True)
    for name, parameter in tower.named_parameters():
        after_encoder = id(parameter) not in layer_ids and name.startswith(("post_layernorm", "final_layer_norm",
                                                                            "head."))
        if after_encoder:
            parameter.requires_grad_(True)
