"""The dual encoder of the CLIP family: an image tower, a text tower, projections, logit scale (and bias)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from components.config import ModelConfig
from components.models.towers import build_text_tower, build_vision_tower, tower_outputs


@dataclass
class PairEncoding:
    image_emb: torch.Tensor  # (B, D), L2-normalised
    text_emb: torch.Tensor
    image_tokens: torch.Tensor  # the towers' last hidden states, for multimodal heads
    text_tokens: torch.Tensor


class DualEncoder(nn.Module):
    def __init__(self, config: ModelConfig, load_pretrained: bool = True):
        """`load_pretrained=False` skips reading a pretrained tower's weights (they come from an artifact)."""
        super().__init__()
        self.config = config
        self.vision = build_vision_tower(config)
        self.text = build_text_tower(config, load_pretrained)
        self.image_projection = self._projection(config.vision.width, config)
        self.text_projection = self._projection(config.text.width, config)
        self.logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))
        bias = config.init_logit_bias
        self.logit_bias = None if bias is None else nn.Parameter(torch.tensor(bias))

    @staticmethod
    def _projection(width: int, config: ModelConfig) -> nn.Module:
        if config.projection:
            return nn.Linear(width, config.embed_dim, bias=False)
        if width != config.embed_dim:
            raise ValueError(f"without projections, tower width {width} must equal embed_dim {config.embed_dim}")
        return nn.Identity()

    def _image(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = tower_outputs(self.vision, pixels, self.config.tokenizer.pad_id)
        return self.image_projection(pooled), tokens

    def _text(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = tower_outputs(self.text, token_ids, self.config.tokenizer.pad_id)
        return self.text_projection(pooled), tokens

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self._image(pixels)[0]
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self._text(token_ids)[0]
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, pixels: torch.Tensor, token_ids: torch.Tensor) -> PairEncoding:
        image, image_tokens = self._image(pixels)
        text, text_tokens = self._text(token_ids)
        return PairEncoding(F.normalize(image, dim=-1), F.normalize(text, dim=-1), image_tokens, text_tokens)

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        self.logit_scale.clamp_(0, self.config.max_logit_scale)
