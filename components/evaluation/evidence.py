"""How far a measured figure can be trusted: finite inputs, spread-out embeddings, and the uncertainty
that a test set of n queries leaves.

- Non-finite embeddings are refused (a NaN compares false both ways, which once let a diverged model
  rank every positive first).
- Collapse shows in the spread of the embeddings: the effective rank (Roy & Vetterli, 2007: exp of the
  entropy of the normalised singular values of the embedding matrix as it is, not centred; 1 when every
  embedding points one way, however slightly they differ, 0 when all are zero, about d for isotropic ones)
  and the mean pairwise cosine (1 when all point one way). Centring first would measure the spread of the
  tiny differences instead, and call embeddings all within 1e-4 of one point nearly full rank.
- Every metric carries its number of queries and a 95% interval: Wilson's score interval for a share of
  queries (Recall@k, top-k accuracy), a normal interval for a mean of per-query values (mAP, mINP), and
  for a mean of shares (mean recall, mean per-class recall) the mean of their bounds, which is the
  widest the correlations between them allow.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:  # torch is imported where tensors are handled: the gate and its policies load without it
    import torch

Z95 = 1.959963984540054
FLOAT32_NOISE = 1e-6  # unit embeddings differing by less than this differ by rounding only


class NonFiniteEmbeddings(ValueError):
    """Embeddings or scores holding NaN or inf: the model diverged, and no metric of it means anything."""


class Interval(BaseModel):
    """A metric's 95% interval and the number of queries it rests on."""

    low: float
    high: float
    n: int

    def holds(self, threshold: float) -> bool:
        """The threshold lies inside the interval: this test set cannot tell the metric from it."""
        return self.low <= threshold <= self.high


def check_finite(embeddings: dict[str, torch.Tensor], where: str = "") -> None:
    """Refuse embeddings with a NaN or inf anywhere, naming which and how many rows."""
    import torch

    bad = {what: int((~torch.isfinite(e)).any(dim=-1).sum()) for what, e in embeddings.items()}
    if any(bad.values()):
        rows = ", ".join(f"{n} of {len(embeddings[what])} {what} embeddings" for what, n in bad.items() if n)
        raise NonFiniteEmbeddings(f"{where + ': ' if where else ''}{rows} are not finite (NaN or inf): the model "
                                  "diverged; retrain it, or evaluate an earlier checkpoint")


def wilson(share: float, n: int) -> Interval:
    """Wilson's score interval for a share of n queries (sound at 0 and 1, unlike the normal one)."""
    if n <= 0:
        return Interval(low=0.0, high=1.0, n=0)
    centre = (share + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(share * (1 - share) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Interval(low=max(0.0, centre - half), high=min(1.0, centre + half), n=n)


def mean_interval(values: torch.Tensor) -> Interval:
    """Normal interval for the mean of per-query values in [0, 1]."""
    n = int(values.numel())
    if n < 2:
        return Interval(low=0.0, high=1.0, n=n)
    mean, half = float(values.double().mean()), Z95 * float(values.double().std()) / math.sqrt(n)
    return Interval(low=max(0.0, mean - half), high=min(1.0, mean + half), n=n)


def mean_of(intervals: list[Interval]) -> Interval:
    """The interval of a mean of metrics: the mean of their bounds; n is the fewest queries among them."""
    return Interval(low=sum(i.low for i in intervals) / len(intervals),
                    high=sum(i.high for i in intervals) / len(intervals), n=min(i.n for i in intervals))


def embedding_spread(embeddings: torch.Tensor) -> dict[str, float]:
    """`effective_rank` and `mean_cosine` of a set of embeddings (rows)."""
    import torch

    e = embeddings.double()
    n = e.shape[0]
    singular = torch.linalg.svdvals(e)
    singular = singular[singular > FLOAT32_NOISE * math.sqrt(max(n, 1))]  # rounding, not spread
    if singular.numel() == 0:  # every row zero: nothing there at all
        effective_rank = 0.0
    else:
        p = singular / singular.sum()
        effective_rank = math.exp(float(-(p * p.log()).sum()))
    unit = torch.nn.functional.normalize(e, dim=-1)
    pairs = n * (n - 1)
    mean_cosine = float((unit.sum(dim=0).square().sum() - unit.square().sum()) / pairs) if pairs else 1.0
    return {"effective_rank": effective_rank, "mean_cosine": mean_cosine}


# How far above chance a figure is, in words a reader acts on. A gate may pass a model only just above chance
# (the general policy asks for no more on a team's own data); these words say how good it is.
STRENGTHS = ((2.0, "indistinguishable from chance in use"), (5.0, "weak"), (20.0, "useful"))


def strength(value: float, chance: float) -> str:
    """`3.4x chance: weak`, from a figure and its chance level."""
    if not chance or not math.isfinite(value):
        return "no chance level to compare with"
    multiple = value / chance
    words = next((said for below, said in STRENGTHS if multiple < below), "strong")
    return f"{multiple:.1f}x chance: {words}"
