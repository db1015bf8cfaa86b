"""ALBEF's image-text matching with hard negatives.

For each image a negative caption is sampled from the batch with probability given by the softmax of
their similarity (positives, i.e. captions of the same image, excluded); likewise a negative image for
each caption. The matching head then classifies B positive and 2B negative pairs. Sampling uses a
generator seeded by (seed, step, rank), so a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.heads import MatchingHead, after_first


def sample_negatives(similarity: torch.Tensor, same_group: torch.Tensor, generator: torch.Generator,
                     hard: bool = True) -> torch.Tensor:
    """For each row, the column of one negative: a harder one (higher similarity) is likelier when `hard`."""
    weights = similarity.float().softmax(dim=1) if hard else torch.ones_like(similarity, dtype=torch.float)
    weights = weights.masked_fill(same_group, 0.0)
    empty = weights.sum(dim=1) == 0
    if empty.any():
        raise ValueError(f"{int(empty.sum())} batch row(s) have no negative: every caption shows the same image")
    return torch.multinomial(weights.cpu(), 1, generator=generator).squeeze(1).to(similarity.device)


@register("matching")
class MatchingObjective(Objective):
    def __init__(self, model_config: ModelConfig, *, fusion_layers: int = 2, hard_negatives: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(rank, world_size)
        self.head = MatchingHead(model_config.text.width, model_config.vision.width, fusion_layers,
                                 model_config.text.heads)
        self.hard, self.seed, self.eos_id = hard_negatives, seed, model_config.tokenizer.eos_id

    def negatives(self, batch: Batch, outputs: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(hash((self.seed, outputs.step, self.rank)) % 2 ** 63)
        with torch.no_grad():
            similarity = outputs.logit_scale * outputs.image_emb @ outputs.text_emb.T
        same = batch.image_groups[:, None] == batch.image_groups[None, :]
        return (sample_negatives(similarity, same, generator, self.hard),
                sample_negatives(similarity.T, same, generator, self.hard))

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        negative_texts, negative_images = self.negatives(batch, outputs)
        everyone = torch.arange(batch.token_ids.shape[0], device=batch.token_ids.device)
        text_index = torch.cat([everyone, negative_texts, everyone])
        image_index = torch.cat([everyone, everyone, negative_images])
        padding = after_first(batch.token_ids, self.eos_id)[text_index]
        logits = self.head(outputs.text_tokens[text_index], padding, outputs.image_tokens[image_index])
        labels = (text_index == image_index).long()  # 1 for the B positives, 0 for the 2B negatives
        return F.cross_entropy(logits, labels)
