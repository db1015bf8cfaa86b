"""`alignops registry …`: versions, aliases, promotion and the audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli.errors import fail, user_errors
from flows.cli.store import registry
from flows.steps.output import echo

app = typer.Typer(help="Model registry: versions, aliases, promotion.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def emit_json(payload: object) -> None:
    echo(json.dumps(payload, indent=2, default=str))


def metric_filter(text: str) -> tuple[str, str, float]:
    import re

    match = re.fullmatch(r"\s*([^<>=\s]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text)
    if not match:
        fail(f"bad --metric {text!r}: write it like 'coco_val/t2i_r1>=0.3'")
    return match[1], match[2], float(match[3])


def headline(metrics: dict[str, float]) -> str:
    return next((f"{v:.3f}" for k, v in metrics.items() if k.endswith("/mean_recall")), "-")


@app.command("list")
@user_errors
def list_(
    model: Annotated[str | None, typer.Argument(help="one model; all models when left out")] = None,
    alias: Annotated[str | None, typer.Option(help="only versions holding this alias")] = None,
    tag: Annotated[str | None, typer.Option(help="KEY=VALUE")] = None,
    dataset: Annotated[str | None, typer.Option(help="only versions trained on this dataset ref (path@rev)")] = None,
    metric: Annotated[str | None, typer.Option(help="e.g. 'synthetic_test/t2i_r1>=0.5'")] = None,
    all_versions: Annotated[bool, typer.Option("--all", help="include archived versions")] = False,
    as_json: JsonOption = False,
) -> None:
    """Versions with their aliases, gate verdicts and headline metric; filters combine."""
    from flows.steps.output import console, rich_table, verdict_mark

    store = registry()
    search = store.search(model, alias=alias, tag=tuple(tag.split("=", 1)) if tag else None, dataset=dataset,
                          metric=metric_filter(metric) if metric else None, include_archived=all_versions)
    found = search.records
    held = {r.ref: store.aliases_of(r) for r in found}
    if as_json:
        emit_json([r.model_dump(exclude={"files"}) | {"aliases": held[r.ref]} for r in found])
    else:
        console.print(rich_table(f"Registry {store.store.url}", ["model", "version", "created", "by", "gate",
                                                                  "mean recall", "aliases"], [
            (r.name, r.version, r.created_at[:19], r.created_by, verdict_mark(r.gate_passed), headline(r.metrics),
             ", ".join(held[r.ref])) for r in found]))
    refused_records(search.refused)


@app.command("show")
@user_errors
def show(ref: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME:VERSION or NAME")], as_json: JsonOption = False,
         ) -> None:
    """A version: metrics, gate rules, lineage and files."""
    from flows.steps.output import bold, console, line, rich_table, verdict_mark

    store = registry()
    record = store.resolve(ref)
    held = store.aliases_of(record)
    signed_by, problem = signature_status(store, record)
    if as_json:
        return emit_json(record.model_dump() | {"aliases": held, "signed_by": signed_by, "signature_problem": problem,
                                                "archived": store.is_archived(record.name, record.version)})
    signature = f"signed by {signed_by} (verified)" if signed_by else f"NOT VERIFIED: {problem}" if problem else \
        "unsigned"
    console.print(line(bold(record.ref), f" created {record.created_at} by {record.created_by}; aliases: "
                       f"{', '.join(held) or '-'}; {signature}"))
    console.print(rich_table("metrics", ["metric", "value"], [(k, f"{v:.4f}") for k, v in record.metrics.items()]))
    if record.gate:
        console.print(rich_table(f"gate {record.gate.policy}", ["rule", "result", "reason"],
                                 [(r.rule, verdict_mark(r.passed), r.reason) for r in record.gate.rules]))
    console.print(compatibility_table(record))
    lineage = {k: v for k, v in record.lineage.model_dump().items() if k not in ("metrics", "training")}
    console.print(rich_table("lineage", ["field", "value"], [(k, json.dumps(v)) for k, v in lineage.items()]))
    console.print(rich_table("files", ["file", "size", "sha256"],
                             [(f, e.size, e.sha256[:16]) for f, e in record.files.items()]))


def signature_status(store, record) -> tuple[str | None, str | None]:
    """Who signed the version as the trusted keys verify it, or what is wrong with its signature."""
    from registry.signing import SignatureInvalid

    try:
        return store.verify(record), None
    except SignatureInvalid as error:
        return None, str(error)


def compatibility_table(record):
    """Which galleries its queries can search: its own space's, and each compatible space's with the evidence."""
    from components.evaluation.metric_names import own_name
    from flows.steps.output import rich_table

    rows = [(record.embedding_space, "own space" if record.space is None else "trained into it (bct)", "-")]
    for compatible in record.compatibility:
        evidence = ", ".join(f"{m} {v:.3f} (old {compatible.old_metrics[own_name(m)]:.3f})"
                             if own_name(m) in compatible.old_metrics else f"{m} {v:.3f}"
                             for m, v in compatible.metrics.items() if m.endswith("t2i_r1"))
        rows.append((compatible.space, compatible.via + (f" ({compatible.projection})" if compatible.projection
                                                         else ""), evidence or "-"))
    return rich_table("embedding space: galleries it can query", ["space", "how", "new->old evidence"], rows)


@app.command("diff")
@user_errors
def diff(a: str, b: str, as_json: JsonOption = False) -> None:
    """Two versions side by side: metrics with deltas, lineage and files that differ."""
    from flows.steps.output import console, rich_table
    from registry.diff import diff_versions

    store = registry()
    changes = diff_versions(store.resolve(a), store.resolve(b))
    if as_json:
        return emit_json(changes.model_dump() | {"metrics": [m.model_dump() | {"delta": m.delta}
                                                             for m in changes.metrics]})

    def fmt(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"

    console.print(rich_table(f"metrics {changes.a} -> {changes.b}", ["metric", "a", "b", "delta"],
                             [(m.metric, fmt(m.a), fmt(m.b), fmt(m.delta, True)) for m in changes.metrics]))
    console.print(rich_table("lineage that differs", ["field", "a", "b"],
                             [(x.field, json.dumps(x.a), json.dumps(x.b)) for x in changes.lineage]))
    console.print(rich_table("files", ["file", "change"], [(f.file, f.change) for f in changes.files]))


@app.command("history")
@user_errors
def history(name: str, as_json: JsonOption = False) -> None:
    """The audit log of a model: every registration, alias move, refusal, rollback and archive."""
    show_history(registry().events(name), f"history of {name}", as_json)


def show_history(events, title: str, as_json: bool) -> None:
    """An audit log as a table, or as JSON."""
    from flows.steps.output import console, rich_table

    if as_json:
        return emit_json([e.model_dump() for e in events])
    columns = ["at", "event", "version", "alias", "actor", "verified by", "reason", "details"]
    console.print(rich_table(title, columns, [
        (e.at[:23], e.event, e.version or "", e.alias or "", e.actor, VERIFIED[e.actor_verified_by], e.reason,
         ", ".join(f"{k}={v}" for k, v in e.details.items() if v is not None and k not in ("statement", "signature")))
        for e in events]))


# How each actor is known, as `registry history` says it.
VERIFIED = {"sts": "STS (S3 caller)", "signature": "signing key", "label": "label only"}


@app.command("project")
@user_errors
def project(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:N whose queries should search older galleries")],
    into: Annotated[str, typer.Option(help="NAME@ALIAS or NAME:N whose embedding space the galleries live in")],
    dataset: Annotated[str, typer.Option(help="a dataset directory or PATH@REV: fitted on its train split, "
                                              "judged on its test split")],
    hidden: Annotated[int, typer.Option(help="0: linear; else the hidden width of a two-layer MLP")] = 0,
    steps: Annotated[int, typer.Option(help="optimiser steps per stage (captions, then pairs)")] = 300,
    policy: Annotated[str | None, typer.Option(help="gate policy (default: general)")] = None,
) -> None:
    """Run the `project` flow: fit a projection from MODEL's embedding space into INTO's (backbones frozen;
    captions, then image-text pairs), measure MODEL's queries against INTO's galleries through it, judge, and
    register it as the next version with the compatibility record."""
    from flows.cli.runs import conclude, dataset_at, print_judgement, resolved_policy
    from flows.projection import project as project_flow
    from registry.names import parse_ref

    parse_ref(model), parse_ref(into)  # before a flow starts
    judged = project_flow(model, into, dataset_at(dataset), hidden=hidden, steps=steps,
                          gate_policy=resolved_policy(policy))
    print_judgement(judged.record.ref, judged.measured, judged.verdict)
    conclude(judged.record.ref, judged.verdict.passed)


@app.command("approve")
@user_errors
def approve(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    alias: Annotated[str, typer.Option(help="the alias the approval is for")] = "production",
    reason: Annotated[str, typer.Option(help="why; recorded and signed")] = "",
) -> None:
    """Approve moving ALIAS to a version: a statement signed with your key, counted where your key is trusted
    and you are neither its registrant nor its trainer (per the access policy)."""
    from registry.names import parse_ref

    parsed = parse_ref(ref)
    if parsed.version is None:
        fail(f"approve names one version, NAME:VERSION, not {ref!r}: an approval is for exact bytes")
    store = registry()
    event = store.approve(parsed.name, parsed.version, alias, reason=reason)
    record = store.get_version(parsed.name, parsed.version)
    count, needed = len(store.approvals(record, alias)), store.trust.policy.approvals.get(alias, 0)
    echo(f"{ref} approved for {alias!r} by {event.actor} ({count} approval(s); the policy asks {needed})")


@app.command("promote")
@user_errors
def promote(
    name: str, version: int, alias: str = "production", reason: str = "",
    force: Annotated[str | None, typer.Option(help="override a missing or failed gate; the REASON is recorded")] = None,
    policy: Annotated[str | None, typer.Option("--gate-policy", "--policy", help=(
        "gate policy whose non-regression rules apply (a shipped name or a YAML file); default: the policy "
        "recorded with the version's verdict"))] = None,
) -> None:
    """Run the `promote` flow: move ALIAS to VERSION; refused unless its gate passed and it does not regress
    against the holder."""
    from flows.cli.runs import resolved_policy
    from flows.promote import promote as promote_flow
    from registry.names import check_name

    check_name(name, "model name"), check_name(alias, "alias")  # bad names fail before a flow starts
    judging = resolved_policy(policy)  # so does a misspelt policy
    registry().get_version(name, version)  # and an unknown model or version, with the closest names
    promotion = promote_flow(name, version, alias, reason=reason, force_reason=force, gate_policy=judging)
    echo(f"{name}@{alias}: {promotion.previous or '-'} -> {version} (non-regression: {promotion.judged_by})")


@app.command("rollback")
@user_errors
def rollback(name: str, alias: str = "production", reason: str = "") -> None:
    """Run the `rollback` flow: move ALIAS back to the version that held it before."""
    from flows.promote import rollback as rollback_flow
    from registry.names import check_name

    check_name(name, "model name"), check_name(alias, "alias")
    registry().resolve(f"{name}@{alias}")  # an unknown model or alias fails before a flow starts
    echo(f"{name}@{alias} -> {rollback_flow(name, alias, reason)}")


@app.command("archive")
@user_errors
def archive(name: str, version: int, reason: str = "") -> None:
    """Hide a version from listings and promotion (its files stay)."""
    registry().archive(name, version, reason=reason)
    echo(f"{name}:{version} archived")


def refused_records(refused: list[str]) -> None:
    """After what could be listed: each tampered record on a line of its own, and exit 1 when there was one."""
    from flows.cli.errors import fail, one_line
    from flows.steps.output import echo

    for problem in refused[:-1]:
        echo(f"error: {one_line(problem)}", err=True)
    if refused:
        fail(f"{refused[-1]} ({len(refused)} record(s) refused, listed above; the rest are shown)")
