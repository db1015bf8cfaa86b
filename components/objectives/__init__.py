"""Training objectives as plug-ins: config names map to modules in `OBJECTIVES`; importing this package
registers them all."""

from components.objectives import (  # noqa: F401 - registers
    bct,
    captioning,
    cleanclip,
    clip,
    distill,
    identity,
    matching,
    modx,
    momentum,
    siglip,
)
from components.objectives.base import (
    OBJECTIVES,
    Batch,
    Objective,
    Outputs,
    Views,
    WeightedObjectives,
    build_objective,
)

__all__ = ["OBJECTIVES", "Batch", "Objective", "Outputs", "Views", "WeightedObjectives", "build_objective"]
