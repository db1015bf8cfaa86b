"""Stages of a long command, each announced with the time left: `[3/8] train · 1m05s so far · ETA 2m40s`.

A command that knows its stages and what each usually takes (`StagePlan`, measured on a 2-core machine) makes the
plan active; the flows mark their steps with `stage(name)`, which does nothing when no plan is active, the plan
does not list that step or a stage is already running (an upgrade's inner trainings belong to the upgrade), so a
flow run from the Prefect UI is unchanged. The estimate scales what is left by how
the finished stages compared with what they were expected to take: a slower machine is foreseen after one stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from components.training.progress import duration
from flows.steps.output import echo

_active: StagePlan | None = None


@dataclass
class StagePlan:
    expected_s: dict[str, float]  # each stage, in order, with what it usually takes
    took_s: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    running: str | None = None

    @contextmanager
    def active(self) -> Iterator[StagePlan]:
        global _active
        _active, self.started = self, time.monotonic()
        try:
            yield self
        finally:
            _active = None

    def eta_s(self) -> float:
        """What the stages not yet finished should take, at the pace of those finished."""
        done_expected = sum(self.expected_s[name] for name in self.took_s)
        pace = sum(self.took_s.values()) / done_expected if done_expected else 1.0
        return pace * sum(s for name, s in self.expected_s.items() if name not in self.took_s)

    def announce(self, name: str) -> None:
        number = list(self.expected_s).index(name) + 1
        echo(f"[{number}/{len(self.expected_s)}] {name} · {duration(time.monotonic() - self.started)} so far · "
             f"ETA {duration(self.eta_s())}", err=True)

    def rows(self) -> list[tuple[str, str, str]]:
        """Each stage with what it was expected to take and what it took."""
        return [(name, f"{expected:.0f} s", f"{self.took_s[name]:.1f} s" if name in self.took_s else "-")
                for name, expected in self.expected_s.items()]


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark a step of a flow: announced and timed when the active plan lists it."""
    plan = _active
    if plan is None or name not in plan.expected_s or plan.running is not None:
        yield
        return
    plan.announce(name)
    plan.running, started = name, time.monotonic()
    try:
        yield
    finally:
        plan.took_s[name], plan.running = time.monotonic() - started, None
