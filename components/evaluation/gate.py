"""The gate: a policy (data, YAML) and a pure function that judges metrics against it.

Rules: absolute floors, non-regression against the incumbent (the version holding the target alias),
and ceilings (serving limits such as p95 latency). Every rule yields one reason, pass or fail. Where the
metric's 95% interval holds the threshold, the test set is too small to decide the rule: the reason says
so, and a policy with `require_decisive` fails such a rule.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from components.evaluation.evidence import Interval


class GatePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt rule must not pass silently

    name: str
    floors: dict[str, float] = Field(default_factory=dict, description="metric -> minimum value")
    non_regression: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop below the incumbent")
    ceilings: dict[str, float] = Field(default_factory=dict, description="metric -> maximum (e.g. latency)")
    forgetting: dict[str, float] = Field(
        default_factory=dict, description="metric -> tolerated drop below the parent model (finetuning)")
    require_decisive: bool = Field(
        False, description="fail a rule whose threshold lies inside the metric's 95% interval (too few queries)")

    @classmethod
    def from_yaml(cls, path: Path) -> GatePolicy:
        return cls.model_validate(yaml.safe_load(Path(path).read_text()))


class RuleResult(BaseModel):
    rule: str
    metric: str
    value: float | None
    threshold: float | None
    passed: bool
    reason: str
    undecided: bool = Field(False, description="the threshold lies inside the metric's 95% interval")


class GateVerdict(BaseModel):
    policy: str
    passed: bool
    rules: list[RuleResult]

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]


def refused(policy: GatePolicy, metric: str, reason: str) -> GateVerdict:
    """The verdict on a model that could not be measured at all (non-finite embeddings): one failing rule."""
    return GateVerdict(policy=policy.name, passed=False, rules=[RuleResult(
        rule="measurable", metric=metric, value=None, threshold=None, passed=False, reason=reason)])


def evaluate_gate(policy: GatePolicy, metrics: dict[str, float], incumbent: dict[str, float] | None = None,
                  parent: dict[str, float] | None = None, intervals: dict[str, Interval] | None = None,
                  ) -> GateVerdict:
    """Judge `metrics`; `incumbent` holds the metrics of the version the candidate would replace, if any;
    `parent` those of the model it was finetuned from, measured on the same sets; `intervals` the 95%
    intervals of the metrics that have one."""
    intervals = intervals or {}

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

    rules = [_compare("floor", m, metrics.get(m), t, at_least=True, what="floor") for m, t in policy.floors.items()]
    rules += [_compare("ceiling", m, metrics.get(m), t, at_least=False, what="ceiling")
              for m, t in policy.ceilings.items()]
    for metric, tolerance in policy.non_regression.items():
        if incumbent is None or metric not in incumbent:
            rules.append(RuleResult(rule="non_regression", metric=metric, value=metrics.get(metric), threshold=None,
                                    passed=True, reason=f"{metric}: no incumbent to regress against"))
        else:
            rules.append(_compare("non_regression", metric, metrics.get(metric), incumbent[metric] - tolerance,
                                  at_least=True, what=f"incumbent {incumbent[metric]:.4f} - {tolerance}"))
    for metric, tolerance in policy.forgetting.items():
        if parent is None or metric not in parent:
            rules.append(RuleResult(rule="forgetting", metric=metric, value=metrics.get(metric), threshold=None,
                                    passed=False, reason=f"{metric}: the parent model's value was not measured"))
        else:
            rules.append(_compare("forgetting", metric, metrics.get(metric), parent[metric] - tolerance,
                                  at_least=True, what=f"parent {parent[metric]:.4f} - {tolerance}"))
    return GateVerdict(policy=policy.name, passed=all(r.passed for r in rules), rules=rules)
