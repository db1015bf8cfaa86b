"""Pictures of a training run a person would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_loss_curves(history: pd.DataFrame, path: Path) -> Path:
    """Training and validation loss against step, from the CSV logger's `metrics.csv`."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for column, label in (("train/loss", "train"), ("val/loss", "val")):
        if column in history:
            points = history[["step", column]].dropna()
            ax.plot(points["step"], points[column], label=label, marker="o" if label == "val" else None)
    ax.set(xlabel="step", ylabel="InfoNCE loss", title="Contrastive loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
