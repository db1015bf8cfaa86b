"""Training objectives as plug-ins: config names map to modules in `OBJECTIVES`; importing this package
registers them all."""

from components.objectives import bct, captioning, clip, distill, identity, matching, siglip  # noqa: F401 - registers
from components.objectives.base import OBJECTIVES, Batch, Objective, Outputs, WeightedObjectives, build_objective

__all__ = ["OBJECTIVES", "Batch", "Objective", "Outputs", "WeightedObjectives", "build_objective"]
