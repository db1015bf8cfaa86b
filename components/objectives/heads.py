"""Multimodal heads over the towers' token states: CoCa's caption decoder and ALBEF's matching head.

Both are small transformer decoders whose cross-attention reads the image tokens. They train with their
objectives and are not part of the exported embedding model.
"""

from __future__ import annotations

import torch
from torch import nn


def _decoder(width: int, layers: int, heads: int) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerDecoder(layer, layers)


def after_first(token_ids: torch.Tensor, token_id: int) -> torch.Tensor:
    """True at positions after the first `token_id` of each row (padding, where pad may equal EOS)."""
    hits = (token_ids == token_id).int()
    return (hits.cumsum(dim=1) - hits) > 0


class CaptionDecoder(nn.Module):
    """Causal self-attention over the (causal) text tower's token states, cross-attention to the image,
    and next-token logits."""

    def __init__(self, text_width: int, vision_width: int, vocab_size: int, layers: int = 2, heads: int = 4):
        super().__init__()
        self.image_projection = nn.Linear(vision_width, text_width)
        self.decoder = _decoder(text_width, layers, heads)
        self.norm, self.head = nn.LayerNorm(text_width), nn.Linear(text_width, vocab_size)

    def forward(self, text_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        length = text_tokens.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=text_tokens.device,
                                                                dtype=text_tokens.dtype)
        states = self.decoder(text_tokens, self.image_projection(image_tokens), tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(states))


class MatchingHead(nn.Module):
    """Fusion of a text with an image (bidirectional over the text, cross-attention to the image) and a
    match / no-match classifier read at the first text position."""

    def __init__(self, text_width: int, vision_width: int, layers: int = 2, heads: int = 4):
        super().__init__()
        self.image_projection = nn.Linear(vision_width, text_width)
        self.decoder = _decoder(text_width, layers, heads)
        self.norm, self.head = nn.LayerNorm(text_width), nn.Linear(text_width, 2)

    def forward(self, text_tokens: torch.Tensor, padding: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        states = self.decoder(text_tokens, self.image_projection(image_tokens), tgt_key_padding_mask=padding)
        return self.head(self.norm(states[:, 0]))
