"""Register an evaluated artifact, and flow `promote`: move an alias to a version with a passing gate."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from components.evaluation.evidence import Interval
from components.evaluation.gate import GatePolicy, GateVerdict, evaluate_gate
from flows.settings import POLICIES, Platform
from registry.records import VersionRecord
from registry.registry import PromotionCheck, Registry


@task(retries=2, retry_delay_seconds=2)
def register_version(name: str, artifact_dir: str, metrics: dict[str, float], verdict: GateVerdict,
                     intervals: dict[str, Interval] | None = None) -> VersionRecord:
    registry = Platform.from_env().registry()
    lineage_file = Path(artifact_dir) / "lineage.json"
    lineage = json.loads(lineage_file.read_text()) | {"metrics": metrics, "metric_intervals": {
        metric: interval.model_dump() for metric, interval in (intervals or {}).items()}}
    lineage_file.write_text(json.dumps(lineage, indent=2))  # the artifact carries its own evaluation
    record = registry.register(name, Path(artifact_dir), metrics=metrics, gate=verdict.model_dump(mode="json"),
                               lineage=lineage, reason="registered by the lifecycle flow")
    if verdict.passed:  # `candidate` moves only on a passing gate
        registry.set_alias(name, "candidate", record.version, reason=f"gate {verdict.policy} passed")
    moved = f"alias `candidate` -> {record.version}" if verdict.passed else "alias `candidate` stays where it was"
    create_markdown_artifact(key="registry-change", description=f"{name}:{record.version} registered", markdown=(
        f"# Registered `{name}:{record.version}`\n\nGate `{verdict.policy}`: "
        f"{'passed' if verdict.passed else 'FAILED'}; {moved}.\n\n"
        f"Files: {len(record.files)}; dataset: {lineage.get('datasets')}"))
    return record


ALIAS_MOVED = "alignops.alias.moved"


PACKAGE_ON_MOVE = "alignops.package-on-move"  # resource label the package automation matches


def announce_alias_move(registry: Registry, name: str, alias: str, version: int, previous: int | None,
                        package_on_move: bool = True, **facts: object) -> None:
    """The Prefect event automations act on: the package automation builds whatever `production` now points
    at, unless the mover packages it itself (`package_on_move` off)."""
    emit_event(event=ALIAS_MOVED, resource={"prefect.resource.id": f"alignops.model.{name}", "alignops.alias": alias,
                                            PACKAGE_ON_MOVE: str(package_on_move).lower()},
               payload={"model": name, "version": version, "alias": alias, "previous": previous,
                        "registry": registry.store.url, **facts})


def non_regression_check(policy: GatePolicy) -> PromotionCheck:
    """The policy's non-regression rules, judged against whichever version holds the alias when it moves."""
    rules = GatePolicy(name=policy.name, non_regression=policy.non_regression)

    def check(candidate: VersionRecord, incumbent: VersionRecord | None) -> list[str]:
        if incumbent is None:
            return []
        verdict = evaluate_gate(rules, candidate.metrics, incumbent.metrics)
        return [f"{r.reason} (incumbent {incumbent.name}:{incumbent.version})" for r in verdict.failures]

    return check


def policy_for(record: VersionRecord, gate_policy: str | None) -> GatePolicy | None:
    """The named policy file, else the shipped policy the version's gate verdict was judged by."""
    if gate_policy:
        return GatePolicy.from_yaml(Path(gate_policy))
    shipped = POLICIES / f"{(record.gate or {}).get('policy')}.yaml"
    return GatePolicy.from_yaml(shipped) if shipped.is_file() else None


@flow(name="promote", log_prints=True)
def promote(name: str, version: int, alias: str = "production", reason: str = "",
            force_reason: str | None = None, gate_policy: str | None = None, package_on_move: bool = True,
            ) -> int | None:
    """Move `alias` to `version`: refused unless its gate passed and, by its policy, it does not regress
    against the version holding the alias; `force_reason` overrides and is recorded. Emits the Prefect
    event `alignops.alias.moved`, on which the package automation builds new production versions (the
    lifecycle, which packages by itself, turns `package_on_move` off). Returns the previous holder."""
    registry = Platform.from_env().registry()
    policy = policy_for(registry.get_version(name, version), gate_policy)
    moved = registry.promote(name, version, alias, reason=reason, force_reason=force_reason,
                             check=non_regression_check(policy) if policy else None)
    previous = moved.history[-1] if moved.history else None
    announce_alias_move(registry, name, alias, version, previous, package_on_move, forced=bool(force_reason))
    create_markdown_artifact(key="registry-change", description=f"{name}@{alias} -> {version}", markdown=(
        f"# `{name}@{alias}` -> version {version}\n\nPrevious holder: {previous or 'none'}.  \n"
        f"Reason: {reason or force_reason or '-'}{' (forced)' if force_reason else ''}  \n"
        f"Non-regression policy: {policy.name if policy else 'none'}"))
    return previous


@flow(name="rollback", log_prints=True)
def rollback(name: str, alias: str = "production", reason: str = "") -> int:
    """Move `alias` back to its previous holder; emits `alignops.alias.moved` like a promotion."""
    registry = Platform.from_env().registry()
    before = registry.get_alias(name, alias)
    moved = registry.rollback(name, alias, reason=reason)
    announce_alias_move(registry, name, alias, moved.version, before.version if before else None, rollback=True)
    create_markdown_artifact(key="registry-change", description=f"{name}@{alias} rolled back to {moved.version}",
                             markdown=f"# `{name}@{alias}` rolled back to {moved.version}\n\nReason: {reason or '-'}")
    return moved.version
