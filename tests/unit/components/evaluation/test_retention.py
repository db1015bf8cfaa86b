"""The retention matrix of a continual run: its figures against their definitions, its shape, its picture, and
the gate rule that judges it."""

import pytest
from pydantic import ValidationError

from components.evaluation.gate import GatePolicy, evaluate_gate
from components.evaluation.metric_names import AVERAGE_FORGETTING, BACKWARD_TRANSFER, FINAL_MEAN_R1
from components.evaluation.retention import Retention, plot_retention

MATRIX = [[0.5], [0.4, 0.6], [0.45, 0.5, 0.7]]


def retention(matrix=MATRIX):
    return Retention(phases=[f"data/p{n}@rev{n}" for n in range(len(matrix))], methods=["modx"] * len(matrix),
                     matrix=matrix)


def test_forgetting_and_backward_transfer_follow_their_definitions():
    figures = retention().metrics()
    # phase 1: best 0.5 (after itself), now 0.45; phase 2: best 0.6, now 0.5 (Chaudhry et al. 2018)
    assert figures[AVERAGE_FORGETTING] == pytest.approx((0.05 + 0.1) / 2)
    # final minus just-learnt, per earlier phase (Lopez-Paz & Ranzato 2017)
    assert figures[BACKWARD_TRANSFER] == pytest.approx(((0.45 - 0.5) + (0.5 - 0.6)) / 2)
    assert figures[FINAL_MEAN_R1] == pytest.approx((0.45 + 0.5 + 0.7) / 3)
    # the best is over every row since the phase was learnt, not only its own: 0.3 -> 0.6 -> 0.2 forgot 0.4
    assert retention([[0.3], [0.6, 0.5], [0.2, 0.5, 0.4]]).average_forgetting == pytest.approx((0.4 + 0.0) / 2)


def test_one_phase_has_nothing_to_forget_and_reports_no_zero():
    figures = retention([[0.3]]).metrics()
    assert figures == {FINAL_MEAN_R1: 0.3}


def test_a_matrix_of_the_wrong_shape_is_refused():
    with pytest.raises(ValidationError, match="one row \\(and one method\\) per phase and j \\+ 1 entries"):
        Retention(phases=["a@1", "b@2"], methods=["modx", "modx"], matrix=[[0.5], [0.4]])


def test_a_growing_stream_keeps_its_rows_and_draws_a_heat_map(tmp_path):
    grown = retention([[0.5]]).with_phase("data/p1@rev1", [0.4, 0.6], "lora")
    assert grown.matrix == [[0.5], [0.4, 0.6]] and grown.phases == ["data/p0@rev0", "data/p1@rev1"]
    assert grown.method == "modx+lora" and retention().method == "modx"  # a stream may change its method
    assert [row["after phase"] for row in grown.table()] == ["1: p0@rev0", "2: p1@rev1"]
    assert plot_retention(retention(), tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_gate_caps_average_forgetting_and_passes_a_run_with_nothing_to_forget():
    policy = GatePolicy(name="tight", max_forgetting=0.05)
    (rule,) = evaluate_gate(policy, retention().metrics()).rules
    assert not rule.passed and rule.value == pytest.approx(0.075) and "> max_forgetting 0.0500" in rule.reason
    (rule,) = evaluate_gate(policy.model_copy(update={"max_forgetting": 0.1}), retention().metrics()).rules
    assert rule.passed
    (rule,) = evaluate_gate(policy, {"x_test/t2i_r1": 0.5}).rules
    assert rule.passed and "no earlier phase to forget" in rule.reason
