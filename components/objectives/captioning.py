"""CoCa's captioning loss: next-token cross-entropy of the caption decoder, up to and including EOS."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.heads import CaptionDecoder, after_first


@register("caption")
class CaptionObjective(Objective):
    def __init__(self, model_config: ModelConfig, decoder_layers: int = 2, rank: int = 0, world_size: int = 1):
        super().__init__(rank, world_size)
        if model_config.text.kind != "clip":
            raise ValueError("the caption objective decodes from a causal text tower: use text kind 'clip', "
                             f"not {model_config.text.kind!r}")
        self.decoder = CaptionDecoder(model_config.text.width, model_config.vision.width,
                                      model_config.tokenizer.vocab_size, decoder_layers, model_config.text.heads)
        self.eos_id = model_config.tokenizer.eos_id

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        logits = self.decoder(outputs.text_tokens[:, :-1], outputs.image_tokens)
        targets = batch.token_ids[:, 1:].masked_fill(after_first(batch.token_ids, self.eos_id)[:, 1:], -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
