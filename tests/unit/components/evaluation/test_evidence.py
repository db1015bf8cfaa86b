"""A broken model cannot flatter itself: ties, collapse and NaN give chance level or lower, or a refusal."""

import math

import pytest
import torch
import torch.nn.functional as F

from components.domains import PRESETS
from components.domains.base import POLICIES
from components.evaluation.evidence import (
    Interval,
    NonFiniteEmbeddings,
    embedding_spread,
    mean_interval,
    mean_of,
    wilson,
)
from components.evaluation.gate import GatePolicy, evaluate_gate, refused
from components.evaluation.person import person_search_metrics
from components.evaluation.retrieval import chance_metrics, retrieval_intervals, retrieval_metrics
from components.evaluation.zero_shot import zero_shot_metrics

N_IMAGES, PER_IMAGE, DIM = 40, 3, 16
TEXT_TO_IMAGE = torch.arange(N_IMAGES).repeat_interleave(PER_IMAGE)


def broken(kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """Embeddings of a broken model: all equal, all zero, or a few distinct rows repeated."""
    if kind == "constant":
        return F.normalize(torch.ones(n, DIM), dim=-1)
    if kind == "zero":
        return torch.zeros(n, DIM)
    distinct = F.normalize(torch.randn(2, DIM, generator=generator), dim=-1)  # two embeddings for everything
    return distinct[torch.arange(n) % 2]


@pytest.mark.parametrize("kind", ["constant", "zero", "duplicated"])
def test_retrieval_of_a_collapsed_model_is_at_most_chance(kind):
    generator = torch.Generator().manual_seed(0)
    images, texts = broken(kind, N_IMAGES, generator), broken(kind, len(TEXT_TO_IMAGE), generator)
    got, chance = retrieval_metrics(images, texts, TEXT_TO_IMAGE), chance_metrics(TEXT_TO_IMAGE, N_IMAGES)
    for name, value in got.items():
        assert value <= chance[name] + 1e-9, (name, value, chance[name])
    if kind != "duplicated":
        assert set(got.values()) == {0.0}  # every score ties: every query ranks last


def test_a_tie_with_a_negative_is_not_a_hit_but_untied_ranks_are_unchanged():
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # text 0 ties images 0 and 1
    got = retrieval_metrics(images, texts, torch.arange(3))
    assert got["t2i_r1"] == pytest.approx(2 / 3) and got["t2i_r5"] == 1.0
    assert got["i2t_r1"] == pytest.approx(2 / 3)  # image 1 scores text 0 and its own text 1 alike


@pytest.mark.parametrize("side", ["image", "text"])
def test_nan_embeddings_are_refused_with_the_row_count(side):
    images, texts = torch.eye(N_IMAGES, DIM * 3)[:, :DIM], torch.eye(len(TEXT_TO_IMAGE), DIM)
    (images if side == "image" else texts)[[1, 4, 7]] = float("nan")
    with pytest.raises(NonFiniteEmbeddings, match=rf"3 of \d+ {side} embeddings are not finite"):
        retrieval_metrics(images, texts, TEXT_TO_IMAGE)


@pytest.mark.parametrize("kind", ["constant", "zero", "duplicated"])
def test_zero_shot_of_a_collapsed_model_is_at_most_chance(kind):
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(N_IMAGES) % 5
    metrics, intervals = zero_shot_metrics(broken(kind, N_IMAGES, generator), labels, broken(kind, 5, generator))
    assert metrics["zs_top1"] <= 1 / 5 and metrics["zs_mean_per_class_recall"] <= 1 / 5
    assert metrics["zs_top5"] == 1.0  # with five classes every class is in the top 5: honest, and chance
    assert intervals["zs_top1"].n == N_IMAGES
    with pytest.raises(NonFiniteEmbeddings, match="1 of 5 class embeddings"):
        zero_shot_metrics(torch.eye(N_IMAGES, 5), labels, torch.eye(5).index_fill(0, torch.tensor([2]), math.nan))


@pytest.mark.parametrize("kind", ["constant", "zero", "duplicated"])
def test_person_search_of_a_collapsed_model_is_at_most_chance(kind):
    generator = torch.Generator().manual_seed(2)
    image_ids, text_ids = torch.arange(30) % 10, torch.arange(20) % 10
    metrics, _ = person_search_metrics(broken(kind, 20, generator), text_ids, broken(kind, 30, generator), image_ids)
    # Pessimistic order: all 27 images of other people come first, so the first relevant one sits at 28.
    if kind != "duplicated":
        assert metrics["t2i_r10"] == 0.0 and metrics["map"] < 0.1
    assert metrics["t2i_r1"] <= 3 / 30 + 1e-9


def test_spread_tells_a_collapsed_model_from_a_working_one():
    generator = torch.Generator().manual_seed(3)
    spread = embedding_spread(F.normalize(torch.randn(200, DIM, generator=generator), dim=-1))
    assert spread["effective_rank"] > 0.8 * DIM and abs(spread["mean_cosine"]) < 0.05
    assert embedding_spread(broken("constant", 50, generator)) == pytest.approx(
        {"effective_rank": 1.0, "mean_cosine": 1.0})
    assert embedding_spread(torch.zeros(50, DIM))["effective_rank"] == 0.0
    assert 1.0 < embedding_spread(broken("duplicated", 50, generator))["effective_rank"] <= 2.0
    unit = F.normalize(torch.randn(30, DIM, generator=generator), dim=-1)
    pairwise = unit @ unit.T
    expected = (pairwise.sum() - pairwise.diag().sum()) / (30 * 29)
    assert embedding_spread(unit)["mean_cosine"] == pytest.approx(float(expected), abs=1e-6)


def reference_effective_rank(matrix: torch.Tensor) -> float:
    """Roy & Vetterli (2007), definition 1: exp of the Shannon entropy of p_k = sigma_k / ||sigma||_1, the
    singular values of the matrix itself."""
    sigma = torch.linalg.svdvals(matrix.double())
    p = sigma[sigma > 0] / sigma.sum()
    return math.exp(-float((p * p.log()).sum()))


def near_collapse(n: int, generator: torch.Generator, within: float = 1e-4) -> torch.Tensor:
    """Unit embeddings all within `within` of one point: a model that maps everything alike."""
    point = F.normalize(torch.randn(DIM, generator=generator), dim=0)
    return F.normalize(point + within * torch.randn(n, DIM, generator=generator) / math.sqrt(DIM), dim=-1)


def test_effective_rank_is_roy_and_vetterlis_and_sees_a_near_collapse():
    generator = torch.Generator().manual_seed(5)
    for matrix in (torch.randn(60, DIM, generator=generator), F.normalize(torch.randn(9, DIM, generator=generator)),
                   torch.randn(30, 4, generator=generator) @ torch.randn(4, DIM, generator=generator)):
        assert embedding_spread(matrix)["effective_rank"] == pytest.approx(reference_effective_rank(matrix), rel=1e-6)
    spread = embedding_spread(near_collapse(200, generator))
    assert spread["effective_rank"] < 1.01 and spread["mean_cosine"] > 0.999


def test_shipped_policies_refuse_a_near_collapsed_model_that_ranks_well():
    """Every figure a policy names passes, as a lucky ranking can make it pass; the embeddings' spread,
    measured on near-collapsed embeddings, fails every shipped policy all the same."""
    generator = torch.Generator().manual_seed(6)
    measured = {f"{side}_{name}": value for side in ("image", "text")
                for name, value in embedding_spread(near_collapse(100, generator)).items()}
    for policy in (GatePolicy.from_yaml(path) for path in sorted(POLICIES.glob("*.yaml"))):
        names = {m for rules in (policy.floors, policy.above_chance) for m in rules}
        sets = {m.split("/")[0] for m in names if not m.startswith("*/")} or {"own_test"}
        figures = {f"{s}/{m.split('/')[1]}": 1.0 for s in sets for m in names}
        figures |= {f"{s}/{name}": value for s in sets for name, value in measured.items()}
        verdict = evaluate_gate(policy, figures, chance={m: 0.0 for m in figures})
        spread_failures = {r.metric.split("/")[1] for r in verdict.failures}
        assert not verdict.passed and spread_failures == {"image_effective_rank", "text_effective_rank",
                                                          "image_mean_cosine", "text_mean_cosine"}, policy.name


def test_wilson_interval_matches_reference_values():
    # Reference: Wilson (1927) / Newcombe (1998) table, 95%: 81/263 -> [0.2553, 0.3662]; 0/10 -> [0, 0.2775].
    assert wilson(81 / 263, 263).model_dump() == pytest.approx({"low": 0.2553, "high": 0.3662, "n": 263}, abs=1e-4)
    assert wilson(0.0, 10).model_dump() == pytest.approx({"low": 0.0, "high": 0.2775, "n": 10}, abs=1e-4)
    assert wilson(1.0, 108).low == pytest.approx(0.9657, abs=1e-4)  # 108 of 108 still leaves 3.4% of doubt
    values = torch.tensor([0.0, 1.0] * 50)
    assert mean_interval(values).model_dump() == pytest.approx(
        {"low": 0.5 - 1.96 * float(values.std()) / 10, "high": 0.5 + 1.96 * float(values.std()) / 10, "n": 100},
        abs=1e-3)
    assert mean_of([Interval(low=0.1, high=0.3, n=5), Interval(low=0.3, high=0.5, n=9)]) == Interval(
        low=0.2, high=0.4, n=5)


def test_retrieval_intervals_count_image_and_caption_queries():
    metrics = retrieval_metrics(torch.eye(N_IMAGES), torch.eye(N_IMAGES)[TEXT_TO_IMAGE], TEXT_TO_IMAGE)
    intervals = retrieval_intervals(metrics, N_IMAGES, len(TEXT_TO_IMAGE))
    assert intervals["i2t_r1"].n == N_IMAGES and intervals["t2i_r1"].n == len(TEXT_TO_IMAGE)
    assert intervals["mean_recall"].low == pytest.approx(sum(i.low for n, i in intervals.items()
                                                             if n != "mean_recall") / 6)


def test_a_threshold_inside_the_interval_is_reported_and_can_be_required_decisive():
    metrics, intervals = {"s/t2i_r1": 0.33}, {"s/t2i_r1": wilson(0.33, 108)}
    lenient = GatePolicy(name="p", floors={"s/t2i_r1": 0.30})
    verdict = evaluate_gate(lenient, metrics, intervals=intervals)
    assert verdict.passed and verdict.rules[0].undecided
    assert "undecided: the threshold lies inside the 95% interval [0.2485, 0.4232] of 108 queries" in \
        verdict.rules[0].reason
    strict = lenient.model_copy(update={"require_decisive": True})
    assert not evaluate_gate(strict, metrics, intervals=intervals).passed
    assert evaluate_gate(strict, {"s/t2i_r1": 0.6}, intervals={"s/t2i_r1": wilson(0.6, 108)}).passed


def test_nan_metric_is_not_a_measurement_and_refusal_is_one_failing_rule():
    policy = GatePolicy(name="p", floors={"s/t2i_r1": 0.30}, ceilings={"s/image_mean_cosine": 0.95})
    verdict = evaluate_gate(policy, {"s/t2i_r1": math.nan, "s/image_mean_cosine": math.nan})
    assert not verdict.passed and len(verdict.failures) == 2
    verdict = refused(policy, "s/embeddings", "eval set s: 3 of 20 image embeddings are not finite")
    assert not verdict.passed and verdict.failures[0].rule == "measurable"


def test_shipped_policies_refuse_a_collapsed_model():
    for preset in PRESETS.values():
        policy, path = preset.policy(), preset.policy_file
        spread_floors = [m for m in policy.floors if m.endswith("_effective_rank")]
        assert {m.split("/")[1] for m in spread_floors} == {"image_effective_rank", "text_effective_rank"}, path
        collapsed = {m: 1.0 for m in policy.floors} | {m: 0.0 for m in spread_floors}
        assert not evaluate_gate(policy, collapsed).passed


def test_unknown_policy_fields_are_refused():
    with pytest.raises(ValueError, match="extra"):
        GatePolicy.model_validate({"name": "p", "floor": {"s/t2i_r1": 0.3}})


def test_strength_says_how_far_above_chance_a_figure_is_in_words():
    from components.evaluation.evidence import strength

    assert strength(0.031, 0.0091) == "3.4x chance: weak"  # what a gate passing 'above chance' may still be
    assert [strength(v, 0.01).split(": ")[1] for v in (0.015, 0.02, 0.19, 0.2, 0.9)] == [
        "indistinguishable from chance in use", "weak", "useful", "strong", "strong"]
    assert strength(float("nan"), 0.01) == strength(0.5, 0.0) == "no chance level to compare with"
