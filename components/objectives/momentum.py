"""ALBEF's image-text contrastive loss with momentum distillation (Li et al. 2021, `salesforce/ALBEF`
`models/model_pretrain.py`): many negatives from a small batch, and soft targets from a slowly moving copy.

- A momentum copy of both towers (an exponential moving average, m = 0.995, moved after every optimiser step).
- Image and text feature queues of the momentum model's past embeddings, filled from every rank.
- Each of this rank's images is scored against the momentum texts of the global batch and the text queue
  (and each text likewise), and pulled towards the soft target alpha * softmax(momentum scores) +
  (1 - alpha) * one-hot, alpha ramped up over the first epoch.

Two choices differ from ALBEF's code, both so that two ranks compute what one process holding the whole
batch computes: the momentum features of the whole global batch are columns of every rank's scores (ALBEF
scores against its own rank's slice and the queue), and the queue holds only features it was given (ALBEF
starts it with random unit vectors, negatives that mean nothing). The temperature is the model's own
(`logit_scale`), as ALBEF's learnable temperature is.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from components.config import ModelConfig
from components.objectives.base import Batch, Objective, Outputs, register
from components.objectives.clip import local_labels
from components.objectives.distributed import gather_constant

MAX_QUEUE = 1 << 20  # 16x ALBEF's 65,536; at 512 dims the two queues then take 4 GiB


def soft_targets(momentum_logits: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * softmax(momentum logits) + (1 - alpha) * one-hot at each row's positive."""
    one_hot = F.one_hot(labels, momentum_logits.shape[1]).to(momentum_logits.dtype)
    return alpha * momentum_logits.softmax(dim=1) + (1 - alpha) * one_hot


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(logits.log_softmax(dim=1) * targets).sum(dim=1).mean()


@register("momentum")
class MomentumDistillation(Objective):
    shards = False

    def __init__(self, model_config: ModelConfig, *, queue_size: int = 65536, momentum: float = 0.995,
                 alpha: float = 0.4, rank: int = 0, world_size: int = 1):
        super().__init__(rank, world_size)
        # Bounded before the queues are allocated: two of them, queue_size x embed_dim floats each.
        if not 0 <= queue_size <= MAX_QUEUE or not 0 <= momentum < 1 or not 0 <= alpha <= 1:
            raise ValueError(f"momentum needs 0 <= queue_size <= {MAX_QUEUE:,}, 0 <= momentum < 1 and 0 <= alpha "
                             f"<= 1; got {queue_size}, {momentum}, {alpha}")
        self.momentum, self.alpha = momentum, alpha
        dim = model_config.embed_dim
        self.register_buffer("image_queue", torch.zeros(queue_size, dim))
        self.register_buffer("text_queue", torch.zeros(queue_size, dim))
        self.register_buffer("queue_next", torch.zeros((), dtype=torch.long))  # where the next feature goes
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.ema: nn.Module | None = None

    def bind(self, model: nn.Module) -> None:
        self.ema = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        # Same parameter order in both: the copy was made from the model, and is never restructured.
        for moving, current in zip(self.ema.parameters(), model.parameters(), strict=True):
            moving.lerp_(current.detach().to(moving.dtype), 1 - self.momentum)

    def queued(self) -> tuple[torch.Tensor, torch.Tensor]:
        filled = int(self.queue_filled)
        return self.image_queue[:filled], self.text_queue[:filled]

    @torch.no_grad()
    def enqueue(self, images: torch.Tensor, texts: torch.Tensor) -> None:
        """The global batch's momentum features into the ring (the oldest overwritten); identical on every rank."""
        size = self.image_queue.shape[0]
        if size == 0:
            return
        images, texts = images[-size:], texts[-size:]
        slots = (self.queue_next + torch.arange(images.shape[0], device=images.device)) % size
        self.image_queue[slots], self.text_queue[slots] = images.to(self.image_queue.dtype), texts.to(
            self.text_queue.dtype)
        self.queue_next.copy_((self.queue_next + images.shape[0]) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + images.shape[0], max=size))

    def forward(self, batch: Batch, outputs: Outputs) -> torch.Tensor:
        if self.ema is None:
            raise RuntimeError("the momentum objective was never bound to a model (`bind`)")
        images, texts = outputs.image_emb, outputs.text_emb
        local = slice(self.rank * images.shape[0], (self.rank + 1) * images.shape[0])
        labels = local_labels(images.shape[0], self.rank, images.device)
        scale = outputs.logit_scale.detach()
        with torch.no_grad():
            encoded = self.ema(batch.pixels, batch.token_ids)
            momentum_images = gather_constant(encoded.image_emb, self.world_size).to(images.dtype)
            momentum_texts = gather_constant(encoded.text_emb, self.world_size).to(texts.dtype)
            queued_images, queued_texts = self.queued()
            all_images = torch.cat([momentum_images, queued_images.to(images.dtype)])
            all_texts = torch.cat([momentum_texts, queued_texts.to(texts.dtype)])
            alpha = self.alpha * min(1.0, outputs.epochs)
            i2t_targets = soft_targets(scale * momentum_images[local] @ all_texts.T, labels, alpha)
            t2i_targets = soft_targets(scale * momentum_texts[local] @ all_images.T, labels, alpha)
        loss = (soft_cross_entropy(outputs.logit_scale * images @ all_texts.T, i2t_targets)
                + soft_cross_entropy(outputs.logit_scale * texts @ all_images.T, t2i_targets)) / 2
        if self.training:  # validation batches are never negatives
            self.enqueue(momentum_images, momentum_texts)
        return loss
