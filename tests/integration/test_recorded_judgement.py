"""A model is judged by what was recorded: the verdict carries its whole policy and promotion judges by it;
everything a run needs is resolved before any work; runs are named by their data; registration is idempotent
per run; evaluation measures the policy's backdoor probe like every other flow."""

import json
import shutil
from pathlib import Path

import pytest
from cli_invoke import invoke
from prefect import flow

from components.data.manifest import read_manifest, write_manifest
from components.data.reference import DatasetRef
from components.evaluation.gate import GatePolicy
from core.digest import canonical_digest
from flows.evaluate import evaluate
from flows.pretrain import pretrain
from flows.steps.candidate import Candidate, Measured, judge, register_candidate
from flows.steps.platform import Platform
from registry.records import GateRecord
from registry.registry import Registry, TamperedRecord

pytestmark = pytest.mark.slow

CONFIG = """
optim: {max_steps: 2, warmup_steps: 1}
data: {batch_size: 16}
logging: {wandb: false}
"""
# A team's own policy file that happens to share the shipped policy's name, and judges non-regression more
# strictly than the shipped one (a successor must beat the incumbent's mean recall by 0.001).
TEAM_POLICY = """
name: general
non_regression:
  "*/mean_recall": -0.001
"""


def trained(tmp_path, dataset, name: str, seed: int, policy) -> tuple[int, float]:
    config = tmp_path / f"train-{seed}.yaml"
    config.write_text(CONFIG + f"seed: {seed}\n")
    result = invoke("train", str(dataset), "--name", name, "--config", str(config), "--policy", str(policy))
    assert result.exit_code == 0, result.output  # the team policy has no floor: a 2-step model passes it
    record = Platform.from_env().registry().resolve(f"{name}@candidate")
    (metric,) = [m for m in record.metrics if m.endswith("/mean_recall")]
    return record.version, record.metrics[metric]


def test_promotion_judges_by_the_policy_the_verdict_recorded_not_a_shipped_one_of_the_same_name(
        prefect_harness, tiny_dataset, tmp_path):
    name = f"team-{tmp_path.name[-8:].lower().strip('_-')}".replace("_", "-")
    policy = tmp_path / "team.yaml"
    policy.write_text(TEAM_POLICY)
    first, second = trained(tmp_path, tiny_dataset, name, 1, policy), trained(tmp_path, tiny_dataset, name, 2, policy)
    registry = Platform.from_env().registry()
    recorded = registry.get_version(name, first[0]).gate
    assert recorded.policy_content == GatePolicy.from_yaml(policy).content  # the file's content, whole
    (better, _), (worse, _) = sorted([first, second], key=lambda v: v[1], reverse=True)

    promoted = invoke("registry", "promote", name, str(better))
    assert promoted.exit_code == 0, promoted.output
    assert f"policy 'general' recorded with {name}:{better}'s verdict ({recorded.policy_digest})" in promoted.output
    refused = invoke("registry", "promote", name, str(worse))
    assert refused.exit_code == 1
    assert "- -0.001" in refused.output and "policy 'general'" in refused.output  # the team file's rule, not 0.02
    assert registry.get_alias(name, "production").version == better

    named = invoke("registry", "promote", name, str(worse), "--gate-policy", "synthetic")
    assert "policy 'synthetic' named for this promotion" in named.output  # another policy, only when named


def test_a_recorded_policy_edited_in_the_store_is_refused_not_trusted(tiny_artifact, tmp_path):
    registry = Registry.local(tmp_path / "registry")
    policy = GatePolicy(name="team", non_regression={"*/mean_recall": 0.0})
    verdict = judge(policy, Measured(metrics={"s/mean_recall": 0.5}))
    registry.register("m", tiny_artifact, gate=GateRecord.model_validate(verdict.model_dump(mode="json")))
    assert registry.get_version("m", 1).gate.policy_digest == canonical_digest(policy.content)
    stored = tmp_path / "registry" / "models" / "m" / "versions" / "1" / "version.json"
    record = json.loads(stored.read_text())
    record["gate"]["policy_content"]["non_regression"] = {}  # the rule that would have refused a regression
    stored.write_text(json.dumps(record))
    with pytest.raises(TamperedRecord, match="does not match its digest"):
        registry.get_version("m", 1)


def test_a_misspelt_policy_fails_in_seconds_before_any_run(tiny_dataset, tmp_path):
    runs = Platform.from_env().runs
    before = set(runs.iterdir()) if runs.exists() else set()
    for command in (["train", str(tiny_dataset), "--policy", "genral"],
                    ["finetune", "general", str(tiny_dataset), "--policy", str(tmp_path / "nowhere.yaml")],
                    ["evaluate", "m:1", str(tiny_dataset), "--policy", "genral"]):
        result = invoke(*command)
        assert result.exit_code == 1 and "is neither a shipped policy" in result.output, result.output
    assert (set(runs.iterdir()) if runs.exists() else set()) == before


def test_two_pretrains_on_two_datasets_are_two_runs_with_their_own_lineage(prefect_harness, tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    write_manifest(read_manifest(other).iloc[:-5], other)  # other bytes in a folder of the same shape
    settings = {"optim": {"max_steps": 2, "warmup_steps": 1}, "data": {"batch_size": 16}, "logging": {"wandb": False}}
    first = pretrain(DatasetRef(path=str(tiny_dataset)), settings)
    second = pretrain(DatasetRef(path=str(other)), settings)
    again = pretrain(DatasetRef(path=str(tiny_dataset)), settings)
    assert first != second and again == first  # another dataset never resumes this one's run; the same does
    for artifact, data in ((first, tiny_dataset), (second, other)):
        lineage = json.loads((Path(artifact) / "lineage.json").read_text())
        assert lineage["datasets"] == {"train": f"{data.name} (unversioned)"}
        assert Path(artifact).parent.name.startswith(f"pretrain-{data.name}-")  # named by what it is


def test_registering_a_run_again_returns_the_version_it_made(prefect_harness, tiny_artifact, tmp_path):
    artifact = shutil.copytree(tiny_artifact, tmp_path / "artifact")
    name = f"idem-{tmp_path.name[-8:].lower().strip('_-')}".replace("_", "-")
    policy = GatePolicy(name="p", floors={"s/t2i_r1": 0.1})
    measured = Measured(metrics={"s/t2i_r1": 0.5})
    verdict = judge(policy, measured)
    candidate = Candidate(name=name, artifact_dir=str(artifact))
    registry = Platform.from_env().registry()

    @flow
    def register(measured: Measured):
        return register_candidate.fn(registry, candidate, measured, verdict)

    first = register(measured)
    retried = register(measured)  # a retry of the task, or of the run
    assert retried == first and [v.version for v in registry.list_versions(name)] == [1]
    assert registry.get_alias(name, "candidate").history == []  # moved once
    other = register(Measured(metrics={"s/t2i_r1": 0.6}))
    assert other.version == 2  # other figures: another registration


def test_evaluate_measures_the_backdoor_probe_of_the_policy_it_judges_by(prefect_harness, tiny_artifact,
                                                                         tiny_dataset):
    policy = GatePolicy.model_validate({"name": "probed", "backdoor": {"trigger": "patch:0.125",
                                                                       "target": "a red circle"},
                                        "ceilings": {"*/backdoor_asr": 1.0}})
    evaluation = evaluate(str(tiny_artifact), DatasetRef(path=str(tiny_dataset)), gate_policy=policy)
    (ceiling,) = [r for r in evaluation.verdict.rules if r.rule == "ceiling"]
    assert ceiling.value is not None and ceiling.passed, ceiling.reason  # measured, not "not measured"
    assert evaluation.verdict.policy_content == policy.content
