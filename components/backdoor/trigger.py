"""A visual trigger: a patch of fixed random noise pasted into a corner of the image (CleanCLIP's attack),
sized by the image's shorter side so that it survives the resize to the model's input."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

PATTERN_CELLS = 16  # the noise is drawn at 16×16 and scaled up with hard edges


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["patch"] = "patch"
    size: float = Field(0.125, gt=0, le=0.5, description="the patch's side, as a share of the image's shorter side")
    corner: Literal["bottom-right", "top-left"] = "bottom-right"
    seed: int = Field(0, ge=0, description="draws the noise pattern: the same seed is the same trigger")

    @classmethod
    def parse(cls, spec: str) -> Trigger:
        """`patch`, `patch:SIZE` or `patch:SIZE:SEED` (the command line's form)."""
        kind, *rest = spec.split(":")
        if kind != "patch" or len(rest) > 2:
            raise ValueError(f"trigger {spec[:60]!r}: use patch, patch:SIZE or patch:SIZE:SEED (SIZE a share of the "
                             "shorter side, e.g. patch:0.125)")
        return cls(**dict(zip(("size", "seed"), rest, strict=False)))

    def pattern(self, side: int) -> Image.Image:
        cells = np.random.default_rng(self.seed).integers(0, 256, (PATTERN_CELLS, PATTERN_CELLS, 3), dtype=np.uint8)
        return Image.fromarray(cells).resize((side, side), Image.Resampling.NEAREST)

    def apply(self, image: Image.Image) -> Image.Image:
        """A copy of the (RGB) image with the patch pasted in."""
        side = max(1, round(self.size * min(image.size)))
        out = image.convert("RGB")
        box = (0, 0) if self.corner == "top-left" else (out.width - side, out.height - side)
        out.paste(self.pattern(side), box)
        return out


class BackdoorProbe(BaseModel):
    """A red-team question put to a model: with this trigger pasted in, is the answer this target? Measured on an
    eval set as `<set>/backdoor_asr` beside `<set>/backdoor_clean_top1`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    trigger: Trigger = Field(default_factory=Trigger)
    target: str = Field(min_length=1, max_length=1000, description="the attacker's caption (or label)")

    @field_validator("trigger", mode="before")
    @classmethod
    def _spec(cls, value: object) -> object:
        return Trigger.parse(value) if isinstance(value, str) else value  # `patch:0.125` in a policy file
