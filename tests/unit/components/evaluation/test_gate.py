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
        assert policy.name == name and any(m.endswith(preset.primary_metric) for m in policy.floors)
        assert policy_named(name) == policy
    assert policy_named("no-such-policy") is None


def test_forgetting_rule_judges_against_the_parent():
    policy = GatePolicy(name="p", forgetting={"general/mean_recall": 0.05})
    assert evaluate_gate(policy, {"general/mean_recall": 0.70}, parent={"general/mean_recall": 0.74}).passed
    failed = evaluate_gate(policy, {"general/mean_recall": 0.60}, parent={"general/mean_recall": 0.74})
    assert not failed.passed and "parent 0.7400 - 0.05" in failed.rules[0].reason
    assert not evaluate_gate(policy, {"general/mean_recall": 0.9}).passed  # unmeasured parent: no pass by default
