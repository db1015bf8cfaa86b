"""How metric names are spelled: `<set>/NAME`, and `xm/<set>/NAME` for a new model's queries against an older
model's gallery. Kept free of torch so that the CLI's argument checks and the gate policy load fast."""

from __future__ import annotations

CROSS_MODEL = "xm"
BACKDOOR_ASR, BACKDOOR_CLEAN_TOP1 = "backdoor_asr", "backdoor_clean_top1"  # a red-team probe's figures
CONTINUAL = "continual"  # a continual run's figures, read from its retention matrix
AVERAGE_FORGETTING, BACKWARD_TRANSFER = f"{CONTINUAL}/average_forgetting", f"{CONTINUAL}/backward_transfer"
FINAL_MEAN_R1 = f"{CONTINUAL}/final_mean_r1"


def prefixed(metrics: dict[str, float], eval_set: str) -> dict[str, float]:
    return {f"{eval_set}/{name}": value for name, value in metrics.items()}


def cross_model_name(metric: str) -> str:
    """`<set>/NAME` -> `xm/<set>/NAME`."""
    return f"{CROSS_MODEL}/{metric}"


def own_name(metric: str) -> str:
    """`xm/<set>/NAME` -> `<set>/NAME` (any other name unchanged)."""
    return metric.removeprefix(f"{CROSS_MODEL}/")
