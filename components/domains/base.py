"""What a domain preset fixes: where its data comes from, how its text and images are prepared, what it
trains with, how it is measured and judged."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from components.config import ObjectiveSpec

POLICIES = Path(__file__).parent / "policies"


@dataclass(frozen=True)
class DomainPreset:
    name: str
    formats: tuple[str, ...]  # `alignops data import` formats its datasets come in
    text_preprocessing: str  # components.text.preprocessing name, stored in the model's tokenizer config
    objectives: tuple[ObjectiveSpec, ...]
    suite: str  # components.evaluation.suites name
    primary_metric: str  # the metric the finetune flow compares and WiSE-FT mixing maximises
    prompt_domain: str  # zero-shot prompt templates (components.text.prompts)
    image_fit: str = "crop"
    images_per_identity: int = 0  # > 0: P x K identity batches
    grayscale: bool = False
    rotations: bool = False  # 90-degree rotations and flips (overhead imagery has no up)
    finetune_steps: int = 200
    learning_rate: float = 5e-4
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def policy(self) -> Path:
        return POLICIES / f"{self.name}.yaml"

    def augment(self, image: Image.Image, rng: random.Random) -> Image.Image:
        """Training-time augmentation; `rng` is seeded per (seed, epoch, row)."""
        if self.grayscale:
            image = ImageOps.grayscale(image).convert("RGB")  # no colour jitter: intensity is the signal
        if self.rotations:
            image = image.rotate(90 * rng.randrange(4))
            if rng.random() < 0.5:
                image = ImageOps.mirror(image)
        scale = rng.uniform(0.9, 1.0)  # a mild random crop, kept within what captions describe
        width, height = round(image.width * scale), round(image.height * scale)
        left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
        return image.crop((left, top, left + width, top + height))
