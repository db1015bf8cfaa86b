"""Register an evaluated artifact, and flow `promote`: move an alias to a version with a passing gate."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.evaluation.gate import GateVerdict
from flows.settings import Platform
from registry.records import VersionRecord


@task(retries=2, retry_delay_seconds=2)
def register_version(name: str, artifact_dir: str, metrics: dict[str, float], verdict: GateVerdict) -> VersionRecord:
    registry = Platform.from_env().registry()
    lineage_file = Path(artifact_dir) / "lineage.json"
    lineage = json.loads(lineage_file.read_text()) | {"metrics": metrics}
    lineage_file.write_text(json.dumps(lineage, indent=2))  # the artifact carries its own evaluation
    record = registry.register(name, Path(artifact_dir), metrics=metrics, gate=verdict.model_dump(mode="json"),
                               lineage=lineage, reason="registered by the lifecycle flow")
    registry.set_alias(name, "candidate", record.version, reason="latest evaluated version")
    create_markdown_artifact(key="registry-change", description=f"{name}:{record.version} registered", markdown=(
        f"# Registered `{name}:{record.version}`\n\nGate `{verdict.policy}`: "
        f"{'passed' if verdict.passed else 'FAILED'}; alias `candidate` -> {record.version}.\n\n"
        f"Files: {len(record.files)}; dataset: {lineage.get('datasets')}"))
    return record


@flow(name="promote", log_prints=True)
def promote(name: str, version: int, alias: str = "production", reason: str = "",
            force_reason: str | None = None) -> int | None:
    """Move `alias` to `version`; refused unless its gate passed or `force_reason` is given. Returns the
    previous holder of the alias."""
    registry = Platform.from_env().registry()
    before = registry.get_alias(name, alias)
    registry.promote(name, version, alias, reason=reason, force_reason=force_reason)
    previous = before.version if before else None
    create_markdown_artifact(key="registry-change", description=f"{name}@{alias} -> {version}", markdown=(
        f"# `{name}@{alias}` -> version {version}\n\nPrevious holder: {previous or 'none'}.  \n"
        f"Reason: {reason or force_reason or '-'}{' (forced)' if force_reason else ''}"))
    return previous
