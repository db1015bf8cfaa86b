"""What a sequence of updates remembers: the retention matrix of a continual run, and the two figures the
continual-learning literature reads from it.

R[j][i] is R@1 (the mean of image->text and text->image R@1) on phase i's test set after training phase j;
only i <= j is measured (a phase's test set is known once its data has arrived).

- Average forgetting (Chaudhry et al. 2018): for every phase but the last, how far its R@1 now lies below
  the best it ever had after being learnt, averaged: mean_i max_{i<=l<T} R[l][i] - R[T][i].
- Backward transfer (Lopez-Paz & Ranzato 2017): mean_i R[T][i] - R[i][i], negative when learning later
  phases hurt earlier ones.

With one phase there is nothing to forget: neither figure exists (and none is reported as 0).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pydantic import BaseModel, Field, model_validator  # noqa: E402

from components.evaluation.metric_names import AVERAGE_FORGETTING, BACKWARD_TRANSFER, FINAL_MEAN_R1  # noqa: E402


def mean_r1(metrics: dict[str, float], eval_set: str) -> float:
    """The retention matrix's entry: mean of the two directions' R@1 on one eval set."""
    return (metrics[f"{eval_set}/i2t_r1"] + metrics[f"{eval_set}/t2i_r1"]) / 2


class Retention(BaseModel):
    """The phases of a continual stream (each dataset version as the registry records it), and what each model
    of the stream scored on every phase learnt up to it."""

    phases: list[str] = Field(default_factory=list, description="each phase's dataset version (PATH@REV), in "
                                                                "order; a directory that was no version by its name")
    methods: list[str] = Field(default_factory=list, description="how each phase was trained (finetune, wiseft, "
                                                                 "modx, lora, momentum)")
    matrix: list[list[float]] = Field(default_factory=list, description="R@1 after phase j (row) on phase i's test "
                                                                        "set (column), i <= j")

    @model_validator(mode="after")
    def _lower_triangle(self) -> Retention:
        rows = [len(r) for r in self.matrix]
        if not len(self.matrix) == len(self.phases) == len(self.methods) or rows != list(range(1, len(rows) + 1)):
            raise ValueError(f"a retention matrix has one row (and one method) per phase and j + 1 entries in row j; "
                             f"got rows of {rows} for {len(self.phases)} phases and {len(self.methods)} methods")
        return self

    @property
    def method(self) -> str:
        """The stream's method, or each phase's in order where they differ."""
        return self.methods[0] if len(set(self.methods)) == 1 else "+".join(self.methods)

    def with_phase(self, phase: str, row: list[float], method: str) -> Retention:
        return Retention(phases=[*self.phases, phase], methods=[*self.methods, method], matrix=[*self.matrix, row])

    @property
    def average_forgetting(self) -> float | None:
        final, earlier = self.matrix[-1], range(len(self.matrix) - 1)
        if not earlier:
            return None
        drops = [max(self.matrix[row][i] for row in range(i, len(self.matrix) - 1)) - final[i] for i in earlier]
        return sum(drops) / len(drops)

    @property
    def backward_transfer(self) -> float | None:
        final, earlier = self.matrix[-1], range(len(self.matrix) - 1)
        if not earlier:
            return None
        return sum(final[i] - self.matrix[i][i] for i in earlier) / len(earlier)

    def metrics(self) -> dict[str, float]:
        """The figures a gate judges and the registry records; forgetting only where there is an earlier phase."""
        final = self.matrix[-1]
        figures = {FINAL_MEAN_R1: sum(final) / len(final)}
        if self.average_forgetting is not None:
            figures |= {AVERAGE_FORGETTING: self.average_forgetting, BACKWARD_TRANSFER: self.backward_transfer}
        return figures

    def labels(self) -> list[str]:
        names = (phase.removesuffix(" (unversioned)").rsplit("/", 1)[-1] for phase in self.phases)
        return [f"{n}: {name[:24]}" for n, name in enumerate(names, start=1)]

    def table(self) -> list[dict[str, str]]:
        """Rows for a terminal or markdown table: after phase j, R@1 on each phase learnt so far."""
        return [{"after phase": label, **{f"on {i + 1}": f"{value:.3f}" for i, value in enumerate(row)}}
                for label, row in zip(self.labels(), self.matrix, strict=True)]


def plot_retention(retention: Retention, path: Path) -> Path:
    """A heat map of the matrix (rows: after phase j; columns: phase i's test set), each cell annotated."""
    size = len(retention.phases)
    grid = [[row[i] if i < len(row) else float("nan") for i in range(size)] for row in retention.matrix]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * size, 1.2 + 0.9 * size), dpi=100)
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=max(1e-9, max(max(r) for r in retention.matrix)))
    for j, row in enumerate(retention.matrix):
        for i, value in enumerate(row):
            ax.text(i, j, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 * image.norm.vmax
                    else "black", fontsize=9)
    ax.set_xticks(range(size), [str(n + 1) for n in range(size)])
    ax.set_yticks(range(size), retention.labels())
    ax.set(xlabel="test set of phase", ylabel="after training phase")
    forgetting = retention.average_forgetting
    ax.set_title(f"R@1 retention ({retention.method})" + (f", forgetting {forgetting:.3f}" if forgetting is not None
                                                         else ""), fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
