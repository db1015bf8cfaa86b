import pytest

from components.domains import PRESETS, policy_named
from components.evaluation.gate import GatePolicy, evaluate_gate

POLICY = GatePolicy(name="t", floors={"coco_val/t2i_r1": 0.30}, non_regression={"coco_val/mean_recall": 0.01},
                    ceilings={"serving/p95_ms": 50})


def test_all_rules_pass_with_one_reason_each():
    verdict = evaluate_gate(POLICY, {"coco_val/t2i_r1": 0.31, "coco_val/mean_recall": 0.50, "serving/p95_ms": 40},
                            incumbent={"coco_val/mean_recall": 0.505})
    assert verdict.passed and [r.rule for r in verdict.rules] == ["floor", "ceiling", "non_regression"]
    assert verdict.rules[2].threshold == 0.505 - 0.01


def test_each_failure_is_reported():
    verdict = evaluate_gate(POLICY, {"coco_val/t2i_r1": 0.29, "coco_val/mean_recall": 0.40, "serving/p95_ms": 51},
                            incumbent={"coco_val/mean_recall": 0.50})
    assert not verdict.passed and len(verdict.failures) == 3
    assert verdict.failures[0].reason == "coco_val/t2i_r1 = 0.2900 < floor 0.3000"


def test_missing_metric_fails_and_no_incumbent_passes_non_regression():
    verdict = evaluate_gate(POLICY, {"coco_val/mean_recall": 0.1, "serving/p95_ms": 1})
    assert [r.passed for r in verdict.rules] == [False, True, True]
    assert verdict.rules[0].reason == "coco_val/t2i_r1 was not measured"
    assert "no incumbent" in verdict.rules[2].reason


def test_every_preset_ships_a_policy_named_for_it():
    for name, preset in PRESETS.items():
        policy = preset.policy()
        judged = {**policy.floors, **policy.above_chance}
        assert policy.name == name and any(m.endswith(preset.primary_metric) for m in judged)
        assert policy_named(name) == policy
    assert policy_named("synthetic").floors["synthetic_test/t2i_r1"] == 0.10  # the demo's, beside the presets'
    assert policy_named("no-such-policy") is None


def test_a_wildcard_rule_judges_every_eval_set_against_chance_and_the_parent():
    policy = GatePolicy(name="w", above_chance={"*/t2i_r1": 0.01}, baseline={"*/mean_recall": 0.02},
                        floors={"*/image_effective_rank": 2.0})
    metrics = {"coco_test/t2i_r1": 0.30, "coco_test/mean_recall": 0.50, "coco_test/image_effective_rank": 9.0,
               "other_test/t2i_r1": 0.05, "other_test/mean_recall": 0.41, "other_test/image_effective_rank": 1.0}
    chance = {"coco_test/t2i_r1": 0.125, "other_test/t2i_r1": 0.05}
    parent = {"coco_test/mean_recall": 0.49, "other_test/mean_recall": 0.45}
    verdict = evaluate_gate(policy, metrics, parent=parent, chance=chance)
    outcome = {(r.rule, r.metric): r.passed for r in verdict.rules}
    assert outcome == {("floor", "coco_test/image_effective_rank"): True,
                       ("floor", "other_test/image_effective_rank"): False,
                       ("above_chance", "coco_test/t2i_r1"): True, ("above_chance", "other_test/t2i_r1"): False,
                       ("baseline", "coco_test/mean_recall"): True, ("baseline", "other_test/mean_recall"): False}
    above = next(r for r in verdict.rules if r.metric == "coco_test/t2i_r1")
    assert above.threshold == 0.125 + 0.01 and "chance + 0.01" in above.reason


def test_baseline_passes_without_a_parent_but_a_wildcard_nothing_measured_fails():
    policy = GatePolicy(name="w", baseline={"*/mean_recall": 0.02}, above_chance={"*/t2i_r1": 0.0})
    verdict = evaluate_gate(policy, {"d_test/mean_recall": 0.3}, chance={})
    reasons = {r.rule: (r.passed, r.reason) for r in verdict.rules}
    assert reasons["baseline"] == (True, "d_test/mean_recall: no parent model measured (trained from scratch, or "
                                         "imported)")
    assert reasons["above_chance"] == (False, "*/t2i_r1 was not measured")
    assert not verdict.passed


def test_a_threshold_inside_the_interval_is_undecided():
    from components.evaluation.evidence import wilson

    policy = GatePolicy(name="u", above_chance={"*/t2i_r1": 0.0})
    metrics, chance = {"tiny_test/t2i_r1": 0.25}, {"tiny_test/t2i_r1": 0.125}
    verdict = evaluate_gate(policy, metrics, chance=chance, intervals={"tiny_test/t2i_r1": wilson(0.25, 8)})
    assert verdict.passed and verdict.rules[0].undecided and "of 8 queries" in verdict.rules[0].reason
    strict = evaluate_gate(policy.model_copy(update={"require_decisive": True}), metrics, chance=chance,
                           intervals={"tiny_test/t2i_r1": wilson(0.25, 8)})
    assert not strict.passed


def test_forgetting_rule_judges_against_the_parent():
    policy = GatePolicy(name="p", forgetting={"general/mean_recall": 0.05})
    assert evaluate_gate(policy, {"general/mean_recall": 0.70}, parent={"general/mean_recall": 0.74}).passed
    failed = evaluate_gate(policy, {"general/mean_recall": 0.60}, parent={"general/mean_recall": 0.74})
    assert not failed.passed and "parent 0.7400 - 0.05" in failed.rules[0].reason
    assert not evaluate_gate(policy, {"general/mean_recall": 0.9}).passed  # unmeasured parent: no pass by default


COMPATIBLE = GatePolicy(name="c", compatibility={"*/t2i_r1": 0.02})


def test_compatibility_needs_cross_model_recall_at_the_old_models_own_and_own_recall_within_tolerance():
    new = {"held/t2i_r1": 0.50, "xm/held/t2i_r1": 0.41}
    verdict = evaluate_gate(COMPATIBLE, new, old={"held/t2i_r1": 0.40})
    assert verdict.passed and [(r.rule, r.metric, r.threshold) for r in verdict.rules] == [
        ("compatible", "xm/held/t2i_r1", 0.40), ("compatible_own", "held/t2i_r1", 0.40 - 0.02)]
    worse_across = evaluate_gate(COMPATIBLE, new | {"xm/held/t2i_r1": 0.39}, old={"held/t2i_r1": 0.40})
    assert [r.rule for r in worse_across.failures] == ["compatible"]
    worse_alone = evaluate_gate(COMPATIBLE, new | {"held/t2i_r1": 0.37}, old={"held/t2i_r1": 0.40})
    assert [r.rule for r in worse_alone.failures] == ["compatible_own"]


def test_compatibility_unmeasured_fails_and_unclaimed_is_not_judged():
    missing = evaluate_gate(COMPATIBLE, {"held/t2i_r1": 0.5}, old={"held/t2i_r1": 0.4})
    assert [r.reason for r in missing.failures] == ["xm/held/t2i_r1 was not measured"]
    unclaimed = evaluate_gate(COMPATIBLE, {"held/t2i_r1": 0.5})
    assert unclaimed.passed and unclaimed.rules == []  # a model in a space of its own is not judged on it


def test_a_backdoor_probe_in_a_policy_file_is_judged_by_its_ceiling(tmp_path):
    (tmp_path / "guard.yaml").write_text(
        "name: guard\nbackdoor: {trigger: 'patch:0.25:3', target: a photo of a banana}\n"
        "ceilings: {'*/backdoor_asr': 0.1}\n")
    policy = GatePolicy.from_yaml(tmp_path / "guard.yaml")
    assert policy.backdoor.trigger.size == 0.25 and policy.backdoor.trigger.seed == 3
    verdict = evaluate_gate(policy, {"a_test/backdoor_asr": 0.05, "b_test/backdoor_asr": 0.6})
    assert [(r.metric, r.passed) for r in verdict.rules] == [("a_test/backdoor_asr", True),
                                                            ("b_test/backdoor_asr", False)]
    assert verdict.failures[0].reason == "b_test/backdoor_asr = 0.6000 > ceiling 0.1000"
    unmeasured = evaluate_gate(policy, {"a_test/t2i_r1": 0.5})  # the probe never ran: a failure, not a pass
    assert not unmeasured.passed and "backdoor_asr was not measured" in unmeasured.failures[0].reason
    with pytest.raises(ValueError, match="measures no backdoor: add `backdoor: {trigger"):
        GatePolicy(name="g", ceilings={"*/backdoor_asr": 0.1})
