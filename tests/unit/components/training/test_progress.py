"""The arithmetic and wording of the progress lines a person waiting on training reads."""

from components.training.progress import Pace, ProgressLines, duration


def test_pace_counts_only_this_attempts_steps_toward_the_speed_and_the_eta():
    pace = Pace(step=150, total=300, elapsed_s=50.0, first_step=100)  # resumed at 100: 50 steps in 50 s
    assert pace.steps_per_s == 1.0 and pace.eta_s == 150.0 and pace.percent == 50.0
    assert Pace(step=0, total=300, elapsed_s=0.0).eta_s is None


def test_durations_read_as_a_person_would_write_them():
    assert [duration(s) for s in (None, 4.4, 75, 3600 + 120 + 5)] == ["?", "4s", "1m15s", "1h02m"]


def test_the_estimate_says_what_the_run_and_more_steps_cost_and_what_a_budget_fits():
    line = ProgressLines(budget_minutes=1).estimate(Pace(step=10, total=300, elapsed_s=5.0))
    assert line == ("estimate: 0.50 s per step; 300 steps ≈ 2m30s (each 100 more steps ≈ 50s); "
                    "the 1-minute budget fits about 120 of them")


def test_a_resumed_run_quotes_the_steps_it_has_left():
    line = ProgressLines().estimate(Pace(step=210, total=300, elapsed_s=5.0, first_step=200))
    assert line == "estimate: 0.50 s per step; 100 steps left of 300 ≈ 50s (each 100 more steps ≈ 50s)"


def test_the_eta_ends_where_the_time_budget_does():
    """300 steps left at 1 step/s would take 5 min, but a 2-minute budget with 60 s spent ends it in 60 s."""
    assert Pace(step=60, total=360, elapsed_s=60.0, budget_s=120.0).eta_s == 60.0
    assert Pace(step=350, total=360, elapsed_s=60.0, budget_s=120.0).eta_s == 10 / (350 / 60)  # steps first
    assert Pace(step=60, total=360, elapsed_s=150.0, budget_s=120.0).eta_s == 0.0
