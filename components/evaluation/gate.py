"""The gate: a policy (data, YAML) and a pure function that judges metrics against it.

Rules: absolute floors, non-regression against the incumbent (the version holding the target alias),
ceilings (serving limits such as p95 latency), a margin above the chance level, and no drop below the
parent model (`forgetting`: required; `baseline`: when the model has a parent), and compatibility with an
older embedding space (`compatibility`: BCT's empirical criterion, where the model claims that space: its
queries against the old model's gallery, `xm/<set>/NAME`, reach the old model's own NAME, and its own NAME is
within the tolerance of the old model's). A policy may carry a backdoor probe (a trigger and the attacker's
target): the candidate pipeline then measures its attack success rate on every eval set, and a ceiling judges
it like any other metric. A continual run's policy may cap its average forgetting across phases
(`max_forgetting`, judged on `continual/average_forgetting`). Every rule yields one reason, pass or fail.
Where the metric's 95% interval holds the threshold, the test set is too small to decide the rule: the reason
says so, and a policy with `require_decisive` fails such a rule.

A metric named `*/NAME` stands for NAME on every eval set measured, so one policy judges a team's own
dataset whatever its eval set is called; it fails when no eval set measured NAME.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.backdoor.trigger import BackdoorProbe
from components.evaluation.evidence import Interval
from components.evaluation.metric_names import AVERAGE_FORGETTING, BACKDOOR_ASR, cross_model_name
from core.digest import canonical_digest


class GatePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt rule must not pass silently

    name: str
    floors: dict[str, float] = Field(default_factory=dict, description="metric -> minimum value")
    non_regression: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop below the incumbent")
    ceilings: dict[str, float] = Field(default_factory=dict, description="metric -> maximum (e.g. latency)")
    forgetting: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop below the parent model (finetuning)")
    baseline: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop below the parent model, where the model has "
                                          "one (a model trained from scratch has no baseline)")
    above_chance: dict[str, float] = Field(
        default_factory=dict, description="metric -> margin it must exceed its chance level by")
    compatibility: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop of the new model's own value below the old "
                                          "model's, where the model claims the old model's embedding space; its "
                                          "cross-model value (xm/<set>/metric) must reach the old model's own")
    max_forgetting: float | None = Field(
        None, ge=0, description="a continual run's most tolerated average forgetting across its phases (R@1 lost "
                                "on earlier phases' test sets, `continual/average_forgetting`)")
    require_decisive: bool = Field(
        False, description="fail a rule whose threshold lies inside the metric's 95% interval (too few queries)")
    backdoor: BackdoorProbe | None = Field(
        None, description="a red-team probe measured on every eval set a candidate is judged on "
                          f"(`<set>/{BACKDOOR_ASR}`); judge it with a ceiling, e.g. `*/{BACKDOOR_ASR}: 0.05`")

    @model_validator(mode="after")
    def _asr_needs_a_probe(self) -> GatePolicy:
        judged = [m for rules in (self.floors, self.ceilings) for m in rules if m.rsplit("/", 1)[-1] == BACKDOOR_ASR]
        if judged and self.backdoor is None:
            raise ValueError(f"policy {self.name!r} judges {judged[0]} but measures no backdoor: add "
                             "`backdoor: {trigger: patch:0.125, target: \"THE ATTACKER'S CAPTION\"}`")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> GatePolicy:
        loaded = yaml.safe_load(Path(path).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a gate policy is a YAML mapping (name, floors, non_regression…)")
        return cls.model_validate(loaded)

    @property
    def content(self) -> dict[str, Any]:
        """What a verdict records of the policy that judged it: all of it."""
        return self.model_dump(mode="json")

    @property
    def digest(self) -> str:
        """What names this exact content in a record (`canonical_digest` of `content`)."""
        return canonical_digest(self.content)


class RuleResult(BaseModel):
    rule: str
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    reason: str
    undecided: bool = Field(False, description="the threshold lies inside the metric's 95% interval")


class GateVerdict(BaseModel):
    policy: str  # its name, for people; what judged is `policy_content`, whole
    passed: bool
    rules: list[RuleResult]
    policy_content: dict[str, Any] = Field(description="the whole policy the verdict was judged by")
    policy_digest: str = Field(description="`canonical_digest` of `policy_content`")

    @classmethod
    def of(cls, policy: GatePolicy, rules: list[RuleResult]) -> GateVerdict:
        return cls(policy=policy.name, passed=all(r.passed for r in rules), rules=rules,
                   policy_content=policy.content, policy_digest=policy.digest)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]


def refused(policy: GatePolicy, metric: str, reason: str) -> GateVerdict:
    """The verdict on a model that could not be measured at all (non-finite embeddings): one failing rule."""
    return GateVerdict.of(policy, [RuleResult(rule="measurable", metric=metric, value=None, threshold=None,
                                              passed=False, reason=reason)])


def evaluate_gate(policy: GatePolicy, metrics: dict[str, float], incumbent: dict[str, float] | None = None, *,
                  parent: dict[str, float] | None = None, intervals: dict[str, Interval] | None = None,
                  chance: dict[str, float] | None = None, old: dict[str, float] | None = None) -> GateVerdict:
    """Judge `metrics`; `incumbent` holds the metrics of the version the candidate would replace, if any;
    `parent` those of the model it was finetuned from, measured on the same sets; `intervals` the 95%
    intervals of the metrics that have one, `chance` their chance levels; `old` the own metrics of the model
    whose embedding space the candidate claims, measured on the same sets in the same run."""
    intervals, chance = intervals or {}, chance or {}

    def _compare(rule: str, metric: str, value: float | None, threshold: float, *, at_least: bool,
                 what: str) -> RuleResult:
        if value is None or value != value:  # NaN: not a measurement
            return RuleResult(rule=rule, metric=metric, value=None, threshold=threshold, passed=False,
                              reason=f"{metric} was not measured")
        passed = value >= threshold if at_least else value <= threshold
        sign = (">=" if passed else "<") if at_least else ("<=" if passed else ">")
        reason = f"{metric} = {value:.4f} {sign} {what} {threshold:.4f}"
        interval = intervals.get(metric)
        undecided = interval is not None and interval.holds(threshold)
        if undecided:
            reason += (f", undecided: the threshold lies inside the 95% interval [{interval.low:.4f}, "
                       f"{interval.high:.4f}] of {interval.n} queries")
            if policy.require_decisive and passed:
                passed, reason = False, reason + " (the policy requires a decisive test set: add test data)"
        return RuleResult(rule=rule, metric=metric, value=value, threshold=threshold, passed=passed, reason=reason,
                          undecided=undecided)

    def against(rule: str, reference: dict[str, float] | None, whose: str, absent: str | None, *,
                metric: str, tolerance: float) -> RuleResult:
        if reference is None and absent is not None:
            return RuleResult(rule=rule, metric=metric, value=metrics.get(metric), threshold=None, passed=True,
                              reason=f"{metric}: {absent}")
        if reference is None or metric not in reference:
            return RuleResult(rule=rule, metric=metric, value=metrics.get(metric), threshold=None, passed=False,
                              reason=f"{metric}: the {whose} model's value was not measured")
        return _compare(rule, metric, metrics.get(metric), reference[metric] - tolerance, at_least=True,
                        what=f"{whose} {reference[metric]:.4f} - {tolerance}")

    def rules_of(thresholds: dict[str, float]) -> list[tuple[str, float]]:
        pairs = [(m, t) for pattern, t in thresholds.items() for m in _matching(pattern, metrics)]
        unmatched = [p for p in thresholds if not _matching(p, metrics)]
        return pairs + [(p, thresholds[p]) for p in unmatched]  # a wildcard nothing measured: reported as not measured

    rules = [_compare("floor", m, metrics.get(m), t, at_least=True, what="floor")
             for m, t in rules_of(policy.floors)]
    rules += [_compare("ceiling", m, metrics.get(m), t, at_least=False, what="ceiling")
              for m, t in rules_of(policy.ceilings)]
    rules += [_compare("above_chance", m, metrics.get(m), chance.get(m, 0.0) + t, at_least=True, what=f"chance + {t}")
              if m in chance or m not in metrics else
              RuleResult(rule="above_chance", metric=m, value=metrics[m], threshold=None, passed=False,
                         reason=f"{m} has no chance level measured")
              for m, t in rules_of(policy.above_chance)]
    rules += [against("non_regression", incumbent if incumbent and m in incumbent else None, "incumbent",
                      "no incumbent to regress against", metric=m, tolerance=t)
              for m, t in rules_of(policy.non_regression)]
    rules += [against("forgetting", parent, "parent", None, metric=m, tolerance=t)
              for m, t in rules_of(policy.forgetting)]
    rules += [against("baseline", parent, "parent", "no parent model measured (trained from scratch, or imported)",
                      metric=m, tolerance=t)
              for m, t in rules_of(policy.baseline)]
    if policy.max_forgetting is not None:
        rules.append(_forgetting_across_phases(metrics, policy.max_forgetting, _compare))
    for m, t in rules_of(policy.compatibility) if old is not None else []:  # no older space claimed: no rule
        rules.append(against("compatible", {cross_model_name(m): old[m]} if m in old else None, "old", None,
                             metric=cross_model_name(m), tolerance=0.0))
        rules.append(against("compatible_own", old, "old", None, metric=m, tolerance=t))
    return GateVerdict.of(policy, rules)


def _forgetting_across_phases(metrics: dict[str, float], limit: float, compare) -> RuleResult:
    """A ceiling on a continual run's average forgetting; a run with no earlier phase has nothing to forget."""
    if AVERAGE_FORGETTING not in metrics:
        return RuleResult(rule="max_forgetting", metric=AVERAGE_FORGETTING, value=None, threshold=limit, passed=True,
                          reason=f"{AVERAGE_FORGETTING}: no earlier phase to forget (not a continual run, or its "
                                 "first phase)")
    return compare("max_forgetting", AVERAGE_FORGETTING, metrics[AVERAGE_FORGETTING], limit, at_least=False,
                   what="max_forgetting")


def _matching(pattern: str, metrics: dict[str, float]) -> list[str]:
    """`*/NAME`: NAME on every eval set measured; any other name: itself."""
    if not pattern.startswith("*/"):
        return [pattern]
    return sorted(m for m in metrics if m.split("/", 1)[-1] == pattern[2:] and "/" in m)
