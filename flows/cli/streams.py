"""`alignops continual`: a model updated phase after phase on dataset versions, and what it remembers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.cli.runs import (
    Policy,
    Preset,
    Steps,
    check_preset,
    conclude,
    dataset_at,
    print_judgement,
    resolved_policy,
    train_config_from,
)
from flows.cli.store import registry
from flows.steps.output import echo


@user_errors
def continual(
    name: Annotated[str, typer.Argument(help="registry name of the last phase's model")],
    datasets: Annotated[list[str], typer.Argument(metavar="DATASET@REV...", help="the phases' data, in order: "
                                                                               "directories or PATH@REV")],
    method: Annotated[str, typer.Option(help="finetune, wiseft, modx, lora or momentum")] = "modx",
    base: Annotated[str, typer.Option(help="registry reference the first phase starts from (the end of a "
                                           "continual stream is continued)")] = "general@production",
    distil_from: Annotated[str | None, typer.Option(help="method modx: a registry reference (NAME@ALIAS) every "
                                                         "phase distils; default: each phase's starting model")] = None,
    max_forgetting: Annotated[float | None, typer.Option(min=0, help="the most average forgetting (R@1) the gate "
                                                                     "tolerates")] = None,
    preset: Preset = "general",
    config: Annotated[Path | None, typer.Option(help="TrainConfig over the preset's finetune recipe")] = None,
    steps: Steps = None,
    policy: Policy = None,
) -> None:
    """Update a model phase after phase (one per dataset version) with a continual method, measure every earlier
    phase's test set after each (the retention matrix), judge the forgetting, register the last phase's model."""
    from components.config import CONTINUAL_METHODS
    from registry.names import check_name, parse_ref

    if method not in CONTINUAL_METHODS:
        raise ValueError(f"--method {method!r}: choose one of {', '.join(CONTINUAL_METHODS)}")
    if distil_from and method != "modx":
        raise ValueError(f"--distil-from is the old model Mod-X distils: it needs --method modx, not {method}")
    check_name(name, "model name"), check_preset(preset), parse_ref(base), distil_from and parse_ref(distil_from)
    train_config, judging = train_config_from(config, steps), resolved_policy(policy)
    phases = [dataset_at(spec) for spec in datasets]
    for ref in filter(None, (base, distil_from)):
        registry().resolve(ref)
    from flows.continual import ContinualConfig
    from flows.continual import continual as continual_flow

    result = continual_flow(ContinualConfig(
        name=name, base_model=base, phases=phases, method=method, distil_from=distil_from, domain=preset,
        train=train_config, max_forgetting=max_forgetting, gate_policy=judging))
    print_retention(result.retention)
    print_judgement(f"{result.model}:{result.version}", result.measured, result.verdict)
    conclude(f"{result.model}:{result.version}", result.verdict.passed)


def print_retention(retention) -> None:
    from flows.steps.output import console, rich_table

    rows = retention.table()
    columns = list(rows[-1])  # the last phase's row has every column
    console.print(rich_table(f"R@1 after each phase ({retention.method}), on each phase's test set", columns,
                             [[row.get(c, "") for c in columns] for row in rows]))
    figures = retention.metrics()
    echo("; ".join(f"{k.split('/')[-1].replace('_', ' ')} {v:+.3f}" if "transfer" in k else
                   f"{k.split('/')[-1].replace('_', ' ')} {v:.3f}" for k, v in figures.items()))


COMMANDS = (continual,)
