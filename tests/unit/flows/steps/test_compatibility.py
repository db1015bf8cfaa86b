"""Compatible training as the lifecycle sets it up: `bct` added once beside the config's own objectives, and a
compatibility record kept only where the gate judged compatibility and every such rule passed."""

from components.config import TrainConfig
from components.evaluation.gate import GatePolicy, evaluate_gate
from flows.steps.compatibility import OldSpace, compatibility_record, with_bct

OLD = OldSpace(ref="general:1", space="general:1", artifact_dir="/state/old-models/general-v1")
POLICY = GatePolicy(name="c", compatibility={"*/t2i_r1": 0.02})
MEASURED = {"held/t2i_r1": 0.50, "xm/held/t2i_r1": 0.45, "xm/held/mean_recall": 0.6, "held/mean_recall": 0.7}


def test_bct_is_added_once_beside_the_configs_objectives():
    train = TrainConfig(optim={"objectives": [{"name": "siglip"}, {"name": "bct", "options": {"old": "/elsewhere"}}]})
    objectives = with_bct(with_bct(train, OLD), OLD).optim.objectives
    assert [(o.name, o.options) for o in objectives] == [("siglip", {}), ("bct", {"old": OLD.artifact_dir})]


def test_a_record_is_kept_only_when_the_compatibility_rules_passed():
    passed = evaluate_gate(POLICY, MEASURED, old={"held/t2i_r1": 0.44})
    record = compatibility_record(OLD, MEASURED, {"held/t2i_r1": 0.44}, passed)
    assert record.space == "general:1" and record.via == "bct"
    assert record.metrics == {"xm/held/t2i_r1": 0.45, "xm/held/mean_recall": 0.6}
    failed = evaluate_gate(POLICY, MEASURED, old={"held/t2i_r1": 0.46})
    assert compatibility_record(OLD, MEASURED, {"held/t2i_r1": 0.46}, failed) is None
    unjudged = evaluate_gate(GatePolicy(name="none"), MEASURED, old={"held/t2i_r1": 0.44})
    assert compatibility_record(OLD, MEASURED, {"held/t2i_r1": 0.44}, unjudged) is None
