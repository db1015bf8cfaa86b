"""The CLIP-style dual encoder: a ViT image tower, a transformer text tower, projections, logit scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel

from components.config import ModelConfig


def _vision_tower(config: ModelConfig) -> CLIPVisionModel:
    v = config.vision
    return CLIPVisionModel(CLIPVisionConfig(
        hidden_size=v.width, intermediate_size=int(v.width * v.mlp_ratio), num_hidden_layers=v.layers,
        num_attention_heads=v.heads, image_size=v.image_size, patch_size=v.patch_size,
        attn_implementation="sdpa"))


def _text_tower(config: ModelConfig) -> CLIPTextModel:
    t, tok = config.text, config.tokenizer
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=tok.vocab_size, hidden_size=t.width, intermediate_size=int(t.width * t.mlp_ratio),
        num_hidden_layers=t.layers, num_attention_heads=t.heads, max_position_embeddings=tok.context_length,
        pad_token_id=tok.pad_id, bos_token_id=tok.sos_id, eos_token_id=tok.eos_id, attn_implementation="sdpa"))


class DualEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.vision = _vision_tower(config)
        self.text = _text_tower(config)
        self.image_projection = nn.Linear(config.vision.width, config.embed_dim, bias=False)
        self.text_projection = nn.Linear(config.text.width, config.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.image_projection(self.vision(pixel_values=pixels).pooler_output)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.text_projection(self.text(input_ids=token_ids).pooler_output)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, pixels: torch.Tensor, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised image and text embeddings and the (exponentiated) logit scale."""
        return self.encode_image(pixels), self.encode_text(token_ids), self.logit_scale.exp()

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        self.logit_scale.clamp_(0, self.config.max_logit_scale)
