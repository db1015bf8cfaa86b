"""What a preset fixes: where its data comes from, how its text and images are prepared, what it trains
with, how it is measured and judged. "General" image-text data is a preset like the domains."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from components.config import Augmentation, ObjectiveSpec, TrainConfig, deep_merge
from components.evaluation.gate import GatePolicy

POLICIES = Path(__file__).parent / "policies"


@dataclass(frozen=True)
class DomainPreset:
    name: str
    formats: tuple[str, ...]  # `alignops data import` formats its datasets come in
    objectives: tuple[ObjectiveSpec, ...]
    suite: str  # components.evaluation.suites name
    primary_metric: str  # the metric the finetune flow compares and WiSE-FT mixing maximises
    prompt_domain: str  # zero-shot prompt templates (components.text.prompts)
    text_preprocessing: str | None = None  # components.text.preprocessing name; none keeps the model's
    image_fit: str | None = None  # "crop" or "pad"; none keeps the model's
    augment: Augmentation = field(default_factory=Augmentation)
    images_per_identity: int = 0  # > 0: P x K identity batches
    finetune_steps: int = 200
    learning_rate: float = 5e-4

    @property
    def policy_file(self) -> Path:
        return POLICIES / f"{self.name}.yaml"

    def policy(self) -> GatePolicy:
        return GatePolicy.from_yaml(self.policy_file)

    def training(self) -> dict:
        """The TrainConfig fields the preset sets for any training on its data."""
        model = {k: v for k, v in (("text_preprocessing", self.text_preprocessing), ("image_fit", self.image_fit))
                 if v is not None}
        return {"model": model,
                "data": {"augment": self.augment.model_dump(), "images_per_identity": self.images_per_identity}}

    def finetuning(self) -> dict:
        """The preset's finetune recipe, over `training()`: a short schedule at its rate, its objectives."""
        return deep_merge(self.training(), {
            "optim": {"max_steps": self.finetune_steps, "learning_rate": self.learning_rate, "warmup_steps": 10,
                      "objectives": [o.model_dump() for o in self.objectives]},
            "data": {"batch_size": 64}, "logging": {"checkpoint_every_n_steps": 50, "val_every_n_steps": 50}})

    def apply(self, config: TrainConfig, finetune: bool = False) -> TrainConfig:
        """`config` over this preset (the fields the user set win): the one place a preset meets a run."""
        resolved = config.overlaid(self.finetuning() if finetune else self.training())
        return resolved.model_copy(update={"domain": self.name})  # the record names the preset applied

