"""Pictures of a curation: the score histogram with its thresholds, and the pairs at the border (the
lowest-scored kept, the highest-scored dropped), where a person sees whether the threshold is right."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from components.curation.curate import CurationResult  # noqa: E402
from components.data.manifest import resolve_image  # noqa: E402
from components.data.transforms import load_image  # noqa: E402

BORDER_PAIRS = 6  # per row of the grid


def score_histogram(result: CurationResult, path: Path) -> Path:
    train = result.rows[(result.rows["split"] == "train") & result.rows["score"].notna()]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.linspace(float(train["score"].min()), float(train["score"].max()) + 1e-6, 40) if len(train) else 10
    for label, part, colour in (("kept", train[train["rule"] == ""], "tab:green"),
                                ("dropped by score", train[train["rule"] == "low_score"], "tab:red"),
                                ("dropped by another rule", train[~train["rule"].isin(["", "low_score"])],
                                 "tab:gray")):
        ax.hist(part["score"], bins=bins, alpha=0.7, color=colour, label=f"{label} ({len(part)})")
    for source, threshold in result.score_thresholds.items():
        if np.isfinite(threshold):
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
            ax.annotate(source, (threshold, ax.get_ylim()[1] * 0.9), fontsize=7, rotation=90, ha="right")
    ax.set(xlabel="image-caption cosine", ylabel="train rows", title="Pair scores (dashed: lowest score kept)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def border_grid(dataset_dir: Path, result: CurationResult, path: Path) -> Path:
    """Top row: the lowest-scored pairs kept; bottom row: the highest-scored pairs dropped (any rule)."""
    train = result.rows[(result.rows["split"] == "train") & result.rows["score"].notna()]
    rows = [("kept, lowest scores", train[train["rule"] == ""].nsmallest(BORDER_PAIRS, "score")),
            ("dropped, highest scores", train[train["rule"] != ""].nlargest(BORDER_PAIRS, "score"))]
    fig, axes = plt.subplots(2, BORDER_PAIRS, figsize=(2.1 * BORDER_PAIRS, 6.2), squeeze=False)
    for (title, pairs), axes_row in zip(rows, axes, strict=True):
        axes_row[0].set_title(title, loc="left", fontsize=9, pad=14)
        for ax, pair in zip(axes_row, [*pairs.itertuples(), *[None] * BORDER_PAIRS], strict=False):
            ax.set_xticks([]), ax.set_yticks([])
            if pair is not None:
                _show(ax, dataset_dir, pair)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _show(ax, dataset_dir: Path, pair: pd.Series) -> None:
    ax.imshow(load_image(resolve_image(dataset_dir, str(pair.image))))
    rule = f" [{pair.rule}]" if pair.rule else ""
    ax.set_xlabel("\n".join(textwrap.wrap(f"{pair.score:.3f}{rule}: {pair.caption}", 28)[:3]), fontsize=6)
