"""`alignops audit …`: measurements that ask whether a model can be trusted (a planted backdoor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import user_errors

app = typer.Typer(help="Audits: is a model backdoored by a trigger?", no_args_is_help=True)


@app.command("backdoor")
@user_errors
def backdoor(
    model: Annotated[str, typer.Argument(help="NAME:N, NAME@ALIAS or an artifact directory")],
    dataset: Annotated[str, typer.Argument(help="a dataset directory or PATH@REV")],
    target: Annotated[str, typer.Option(help="the attacker's caption (or label, where the split has labels)")],
    trigger: Annotated[str, typer.Option(help="patch, patch:SIZE or patch:SIZE:SEED (SIZE: share of the "
                                              "shorter side)")] = "patch",
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    max_asr: Annotated[float | None, typer.Option(help="fail (exit 1) when the attack success rate is above "
                                                       "this")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the audit here")] = None,
) -> None:
    """Run the `audit_backdoor` flow: the share of triggered images answered by TARGET (attack success rate)
    beside clean top-1 on the same images; recorded on a registry version as an `audited` event."""
    from components.backdoor.trigger import BackdoorProbe, Trigger
    from components.data.manifest import SPLITS
    from registry.names import parse_ref

    probe = BackdoorProbe(trigger=Trigger.parse(trigger), target=target)
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: use one of {SPLITS}")
    if not Path(model).is_dir():
        parse_ref(model)
    from flows.audit import audit_backdoor
    from flows.cli.runs import dataset_at
    from flows.steps.output import console, rich_table

    audit = audit_backdoor(model, dataset_at(dataset), probe, split=split, max_asr=max_asr)
    console.print(rich_table(f"Backdoor audit of {audit.model} ({audit.images} {split} images, {audit.mode})",
                             ["metric", "value", "95% interval", "chance"],
                             [(m, f"{v:.3f}", f"{audit.intervals[m].low:.3f}-{audit.intervals[m].high:.3f}",
                               f"{audit.chance[m]:.3f}") for m, v in audit.metrics.items()]))
    for rule in audit.verdict.rules if audit.verdict else []:
        console.print(f"  gate {rule.rule}: {rule.reason} — {'pass' if rule.passed else 'FAIL'}")
    if json_out:
        json_out.write_text(json.dumps(audit.model_dump(mode="json"), indent=2))
    raise typer.Exit(0 if audit.verdict is None or audit.verdict.passed else 1)
