"""What a person waiting on training sees: after the first steps, the time per step and what the whole
run will take; then a line every few seconds (step, loss, steps/s, ETA). Plain lines on stderr, so they
read the same in a terminal, a log file or a CI job. An orchestrator may pass `report` to show the same
progress elsewhere (the flows turn it into a Prefect progress artifact)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L

ESTIMATE_AFTER_STEPS = 5  # the first steps include start-up costs: the estimate waits for a few
Report = Callable[[float, str], None]  # (percent done, the line a person would read)


@dataclass
class Pace:
    """Steps done, steps planned and the time they took: the arithmetic of the progress line."""

    step: int
    total: int
    elapsed_s: float
    first_step: int = 0  # a resumed run's steps before this attempt do not count toward its speed
    budget_s: float | None = None  # a time budget ends this attempt when it is spent, whatever steps are left

    @property
    def steps_per_s(self) -> float:
        done = self.step - self.first_step
        return done / self.elapsed_s if self.elapsed_s > 0 and done > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        by_steps = (self.total - self.step) / self.steps_per_s if self.steps_per_s else None
        if self.budget_s is None:
            return by_steps
        by_budget = max(self.budget_s - self.elapsed_s, 0.0)
        return by_budget if by_steps is None else min(by_steps, by_budget)

    @property
    def percent(self) -> float:
        return 100.0 * self.step / self.total if self.total else 100.0


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines(L.Callback):
    def __init__(self, every_s: float = 10.0, budget_minutes: float | None = None, report: Report | None = None):
        self.every_s, self.budget_minutes, self.report = every_s, budget_minutes, report
        self.started = self.last_line = 0.0
        self.first_step, self.estimated = 0, False

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = self.last_line = time.monotonic()
        self.first_step, self.estimated = trainer.global_step, False

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if not trainer.is_global_zero:
            return
        now = time.monotonic()
        pace = Pace(trainer.global_step, trainer.max_steps, now - self.started, self.first_step,
                    self.budget_minutes * 60 if self.budget_minutes else None)
        if not self.estimated and pace.step - self.first_step >= ESTIMATE_AFTER_STEPS:
            self.estimated = True
            self._say(pace, self.estimate(pace))
        if now - self.last_line >= self.every_s or pace.step == trainer.max_steps:
            self.last_line = now
            loss = trainer.callback_metrics.get("train/loss")
            self._say(pace, f"step {pace.step}/{pace.total} ({pace.percent:.0f}%) · loss "
                            f"{float(loss):.4f} · {pace.steps_per_s:.2f} steps/s · ETA {duration(pace.eta_s)}"
                      if loss is not None else f"step {pace.step}/{pace.total} · ETA {duration(pace.eta_s)}")

    def estimate(self, pace: Pace) -> str:
        per_step, left = 1 / pace.steps_per_s, pace.total - pace.first_step  # a resumed run quotes what is left
        planned = f"{pace.total} steps" if not pace.first_step else f"{left} steps left of {pace.total}"
        line = (f"estimate: {per_step:.2f} s per step; {planned} ≈ {duration(per_step * left)} "
                f"(each 100 more steps ≈ {duration(per_step * 100)})")
        if self.budget_minutes:
            fits = int(self.budget_minutes * 60 / per_step)
            line += f"; the {self.budget_minutes:g}-minute budget fits about {min(fits, left)} of them"
        return line

    def _say(self, pace: Pace, line: str) -> None:
        print(f"[train] {line}", file=sys.stderr, flush=True)
        if self.report:
            self.report(pace.percent, line)
