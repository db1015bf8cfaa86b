"""The LightningModule that pretrains (or finetunes) a dual encoder with any mix of objectives."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file

from components.config import ModelConfig, ModelSection, OptimSection
from components.models.artifact import WEIGHTS_FILE
from components.models.dual_encoder import DualEncoder
from components.models.towers import lock_tower
from components.objectives import Batch, Outputs, Views, WeightedObjectives, build_objective
from components.objectives.views import image_views, text_views
from components.training.sharding import is_sharded, shard


def warmup_cosine(warmup_steps: int, max_steps: int):
    """Learning-rate multiplier: linear warmup, then cosine decay to zero at `max_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def no_decay(name: str, parameter: torch.nn.Parameter) -> bool:
    """Norms, biases, embeddings' 1-D gains and the logit scale and bias take no weight decay."""
    return parameter.ndim < 2 or "norm" in name or name.endswith(".bias") or "logit_" in name


def to_batch(collated: dict[str, Any]) -> Batch:
    return Batch(collated["pixels"], collated["token_ids"], collated["image_group"], collated.get("person_id"),
                 list(collated.get("caption", [])))


class ContrastivePretraining(L.LightningModule):
    def __init__(self, model_config: ModelConfig, optim: OptimSection | None = None,
                 towers: ModelSection | None = None):
        """The model to build, how to optimise it (`optim`), and where it starts and which weights move (`towers`:
        the artifact it starts from, locks or LoRA, activation checkpointing, compilation). Checkpoints keep them
        as plain dicts: they load without pickle. A resume then overwrites the starting weights with the
        checkpoint's."""
        super().__init__()
        self.optim, self.towers = optim or OptimSection(), towers or ModelSection()
        self.save_hyperparameters({"model_config": model_config.model_dump(mode="json"),
                                   "optim": self.optim.model_dump(mode="json"),
                                   "towers": self.towers.model_dump(mode="json")})
        self.model = DualEncoder(model_config)
        if self.towers.init_from:
            self.model.load_state_dict(load_file(str(Path(self.towers.init_from) / WEIGHTS_FILE)))
        specs = self.optim.objectives
        self.objectives = WeightedObjectives(
            {s.name: build_objective(s.name, s.options, 0, 1, model_config=model_config) for s in specs},
            {s.name: s.weight for s in specs})
        locks = ((self.model.vision, self.towers.lock_image), (self.model.text, self.towers.lock_text))
        for tower, lock in locks:
            if lock.locked:
                lock_tower(tower, lock.unlocked_layers)
            if self.towers.gradient_checkpointing:
                tower.activation_checkpointing_enable()
        if self.towers.lora is not None:
            from components.training.lora import add_lora  # peft takes seconds to import: only where it is used

            add_lora(self.model, self.towers.lora)
        # An objective's state starts from the model as it will train (its starting weights, its adapters).
        self.objectives.bind(self.model)

    def configure_model(self) -> None:
        if self._device_mesh is not None and not is_sharded(self):  # ModelParallelStrategy: `strategy: fsdp`
            shard(self.model, self.objectives, self._device_mesh["data_parallel"])
        if self.towers.compile:
            self.model.vision.compile()  # in place: parameter names, hence checkpoints and artifacts, stay the same
            self.model.text.compile()

    def setup(self, stage: str) -> None:
        # Ranks are known only once the strategy has started.
        for objective in self.objectives.parts.values():
            objective.rank, objective.world_size = self.global_rank, self.trainer.world_size

    def losses(self, collated: dict[str, Any], batch_idx: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = to_batch(collated)
        encoded = self.model(batch.pixels, batch.token_ids)
        outputs = Outputs(encoded.image_emb, encoded.text_emb, self.model.logit_scale.exp(), self.model.logit_bias,
                          encoded.image_tokens, encoded.text_tokens, self.global_step, self.epochs(batch_idx),
                          self.views(batch))
        return self.objectives(batch, outputs)

    def epochs(self, batch_idx: int) -> float:
        """Epochs trained, fractional; a stream of unknown length counts as past its first epoch."""
        per_epoch = self.trainer.num_training_batches if self._trainer is not None else float("inf")
        if not 0 < per_epoch < float("inf"):
            return 1.0
        return self.current_epoch + batch_idx / per_epoch

    def views(self, batch: Batch) -> Views | None:
        """Second views, encoded, where an objective asks for them; drawn per step and rank (exact resume)."""
        if not any(part.needs_views for part in self.objectives.parts.values()):
            return None
        generator = torch.Generator().manual_seed(self.global_step * 1_000_003 + self.global_rank)
        pixels = image_views(batch.pixels.cpu(), generator).to(batch.pixels)
        tokens = text_views(batch.token_ids.cpu(), self.model.config.tokenizer, generator).to(batch.token_ids)
        encoded = self.model(pixels, tokens)
        return Views(encoded.image_emb, encoded.text_emb)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, parts = self.losses(batch, batch_idx)
        self.log("train/loss", loss, prog_bar=True)
        if len(parts) > 1:
            self.log_dict({f"train/{name}": value for name, value in parts.items()})
        self.log("train/logit_scale", self.model.logit_scale.exp())
        if self.model.logit_bias is not None:
            self.log("train/logit_bias", self.model.logit_bias)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.log("val/loss", self.losses(batch)[0], prog_bar=True, batch_size=batch["pixels"].shape[0])

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        # Right after the step, before any callback (a checkpoint) sees the weights.
        self.model.clamp_logit_scale()
        self.objectives.after_step(self.model)

    def configure_optimizers(self):
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": self.optim.weight_decay},
            {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.optim.learning_rate, betas=(0.9, 0.98), eps=1e-6,
                                      fused=self.device.type == "cuda")
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.optim.warmup_steps, self.optim.max_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
