"""The LightningModule for contrastive pretraining of a dual encoder."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from components.config import ModelConfig
from components.models.dual_encoder import DualEncoder
from components.objectives.clip_loss import ClipLoss


def warmup_cosine(warmup_steps: int, max_steps: int):
    """Learning-rate multiplier: linear warmup, then cosine decay to zero at `max_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def no_decay(name: str, parameter: torch.nn.Parameter) -> bool:
    """Norms, biases, embeddings' 1-D gains and the logit scale take no weight decay."""
    return parameter.ndim < 2 or "norm" in name or name.endswith(".bias") or "logit_scale" in name


class ContrastivePretraining(L.LightningModule):
    def __init__(self, model_config: dict[str, Any], learning_rate: float = 1e-3, weight_decay: float = 0.1,
                 warmup_steps: int = 50, max_steps: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.model = DualEncoder(ModelConfig.model_validate(model_config))
        self.loss = ClipLoss()

    def setup(self, stage: str) -> None:
        # Ranks are known only once the strategy has started.
        self.loss = ClipLoss(rank=self.global_rank, world_size=self.trainer.world_size)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        pixels, tokens = batch
        return self.loss(*self.model(pixels, tokens))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/logit_scale", self.model.logit_scale.exp())
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self.log("val/loss", self._step(batch), prog_bar=True, batch_size=batch[0].shape[0])

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.model.clamp_logit_scale()

    def configure_optimizers(self):
        named = list(self.model.named_parameters())
        groups = [
            {"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": self.hparams.weight_decay},
            {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.learning_rate, betas=(0.9, 0.98), eps=1e-6)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.hparams.warmup_steps, self.hparams.max_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
