"""Flows `promote` and `rollback`: move an alias, gated by the version's recorded verdict, its policy's
non-regression rules and the galleries it must keep searching, and announce the move."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from components.domains import policy_from
from components.evaluation.gate import GatePolicy, evaluate_gate
from flows.steps.candidate import announce_alias_move
from flows.steps.platform import Platform
from registry.records import VersionRecord
from registry.registry import PromotionCheck, PromotionRefused, Registry


def non_regression_check(policy: GatePolicy) -> PromotionCheck:
    """The policy's non-regression rules, judged against whichever version holds the alias when it moves."""
    rules = GatePolicy(name=policy.name, non_regression=policy.non_regression)

    def check(candidate: VersionRecord, incumbent: VersionRecord | None) -> list[str]:
        if incumbent is None:
            return []
        verdict = evaluate_gate(rules, candidate.metrics, incumbent.metrics)
        return [f"{r.reason} (incumbent {incumbent.ref}; policy {policy.name!r})" for r in verdict.failures]

    return check


def gallery_check(registry: Registry, alias: str) -> PromotionCheck:
    """The galleries that hold the same alias and are served with this model's versions (paired with one, or
    embedded by one) must stay searchable by the version that takes it: a promotion that would pair a query
    model with a gallery of a space it cannot query is refused until the gallery is re-embedded (or the
    promotion is forced with the re-index planned)."""
    galleries = registry.galleries()

    def check(candidate: VersionRecord, incumbent: VersionRecord | None) -> list[str]:
        objections = []
        for name in galleries.list_models():
            held = galleries.get_alias(name, alias)
            gallery = galleries.get_version(name, held.version) if held else None
            serving = gallery and (held.paired_model or gallery.lineage.parent_model or "")
            if gallery is None or serving.rsplit(":", 1)[0] != candidate.name:
                continue
            if not candidate.can_query(gallery.embedding_space):
                objections.append(
                    f"gallery {gallery.ref} (@{alias}, space {gallery.embedding_space}) cannot be searched by "
                    f"{candidate.ref}: re-embed it first (`alignops gallery build {candidate.ref} DATASET --name "
                    f"{name}`, then `alignops gallery promote {name} N --alias {alias}`), or force the promotion "
                    "with the planned re-index as its reason")
        return objections

    return check


def promotion_check(registry: Registry, alias: str, policy: GatePolicy | None) -> PromotionCheck:
    """What every move of a model alias is checked by: the policy's non-regression rules and the galleries."""
    checks = [non_regression_check(policy) if policy else None, gallery_check(registry, alias)]
    return lambda candidate, incumbent: [o for c in checks if c for o in c(candidate, incumbent)]


class JudgingPolicy(BaseModel):
    """The policy a promotion judges non-regression by, and where it came from, in words."""

    policy: GatePolicy | None
    source: str

    def __str__(self) -> str:
        return self.source


def policy_for(record: VersionRecord, gate_policy: GatePolicy | str | None) -> JudgingPolicy:
    """The policy named for this promotion (a shipped name, a file, or one already loaded), else the one the
    version's verdict recorded, whole: a policy edited or renamed since changes nothing already judged."""
    if gate_policy is not None:
        policy = gate_policy if isinstance(gate_policy, GatePolicy) else policy_from(gate_policy)
        return JudgingPolicy(policy=policy, source=f"policy {policy.name!r} named for this promotion "
                                                   f"({policy.digest})")
    if record.gate is None:
        return JudgingPolicy(policy=None, source=f"{record.ref} has no gate verdict: no non-regression rule")
    if record.gate.policy_content is None:
        return JudgingPolicy(policy=None, source=(
            f"{record.ref}'s verdict ({record.gate.policy!r}) was recorded without its policy: no non-regression "
            "rule applies; name one with --gate-policy"))
    policy = GatePolicy.model_validate(record.gate.policy_content)  # its digest checked when the record was read
    return JudgingPolicy(policy=policy, source=f"policy {policy.name!r} recorded with {record.ref}'s verdict "
                                               f"({record.gate.policy_digest})")


APPROVAL_POLL_S = 10  # how often a paused promotion asks the API whether a person answered


class ApprovalDecision(RunInput):
    """What a person answers in the Prefect UI when a promotion waits for approval."""

    approve: bool = Field(description="go on: the promotion then counts the signed approvals in the registry")
    note: str = Field("", description="why, for the flow's log")


def wait_for_approval(registry: Registry, record: VersionRecord, alias: str, wait_s: int) -> bool:
    """Where the access policy wants approvals the registry does not hold yet, pause the flow run in the Prefect
    UI until a person resumes it (or `wait_s` passes). An approval counts only as a signed statement in the
    registry, so the form says how to make one; resuming without one still ends in a refusal. True where it
    waited."""
    missing = registry.approvals_missing(record, alias)
    if not missing or wait_s <= 0:
        return False
    print(f"{record.ref} -> {alias!r} waits for {missing} approval(s): `alignops registry approve {record.ref} "
          f"--alias {alias} --reason …` with a trusted key, then resume this run in the Prefect UI")
    decision = pause_flow_run(wait_for_input=ApprovalDecision.with_initial_data(
        description=f"**{record.ref} -> {alias}** needs {missing} more signed approval(s). Record yours with "
                    f"`alignops registry approve {record.ref} --alias {alias} --reason …`, then approve here.",
        approve=True), timeout=wait_s, poll_interval=APPROVAL_POLL_S,
        key=f"approve-{record.name}-{record.version}-{alias}")
    if not decision.approve:
        raise PromotionRefused(f"{record.ref} -> {alias!r} was turned down in the Prefect UI: "
                               f"{decision.note or '-'}")
    print(f"resumed in the Prefect UI: {decision.note or '-'}")
    return True


class Promotion(BaseModel):
    previous: int | None
    judged_by: str  # which policy judged non-regression, and where it came from


@flow(name="promote", log_prints=True)
def promote(name: str, version: int, alias: str = "production", *, reason: str = "",
            force_reason: str | None = None, gate_policy: GatePolicy | str | None = None,
            package_on_move: bool = True, approval_wait_s: int = 0) -> Promotion:
    """Move `alias` to `version`: refused unless its gate passed and, by its policy, it does not regress
    against the version holding the alias; `force_reason` overrides and is recorded. Emits the Prefect
    event `alignops.alias.moved`, on which the package automation builds new production versions (the
    lifecycle, which packages by itself, turns `package_on_move` off). Non-regression is judged by
    `gate_policy` where one is named, else by the policy the version's verdict recorded. Where the access
    policy wants approvals not yet given, the run pauses for up to `approval_wait_s` for a person to approve
    in the Prefect UI (0: refused at once, as from the command line)."""
    registry = Platform.from_env().registry()
    record = registry.get_version(name, version)
    judging = policy_for(record, gate_policy)
    print(f"non-regression: {judging}")
    if wait_for_approval(registry, record, alias, approval_wait_s):
        registry = Platform.from_env().registry()  # keys trusted while the run waited count too
    moved = registry.promote(name, version, alias, reason=reason, force_reason=force_reason,
                             check=promotion_check(registry, alias, judging.policy))
    previous = moved.history[-1] if moved.history else None
    admitted = moved.event.details if moved.event else {}
    announce_alias_move(registry, record, alias, previous, package_on_move, forced=bool(force_reason))
    create_markdown_artifact(key="registry-change", description=f"{name}@{alias} -> {version}", markdown=(
        f"# `{name}@{alias}` -> version {version}\n\nPrevious holder: {previous or 'none'}.  \n"
        f"Reason: {reason or force_reason or '-'}{' (forced)' if force_reason else ''}  \n"
        f"Non-regression: {judging}  \n"
        f"Signed by: {admitted.get('signed_by') or 'unsigned'}; approved by: "
        f"{', '.join(admitted.get('approved_by', [])) or 'no approval asked'}"))
    return Promotion(previous=previous, judged_by=str(judging))


@flow(name="rollback", log_prints=True)
def rollback(name: str, alias: str = "production", reason: str = "") -> int:
    """Move `alias` back to its previous holder; emits `alignops.alias.moved` like a promotion."""
    registry = Platform.from_env().registry()
    before = registry.get_alias(name, alias)
    moved = registry.rollback(name, alias, reason=reason)
    announce_alias_move(registry, registry.get_version(name, moved.version), alias,
                        before.version if before else None, rollback=True)
    create_markdown_artifact(key="registry-change", description=f"{name}@{alias} rolled back to {moved.version}",
                             markdown=f"# `{name}@{alias}` rolled back to {moved.version}\n\nReason: {reason or '-'}")
    return moved.version
