"""The whole lifecycle on a small generated dataset: DVC, validation, training, gate, registry, bento."""

import json

import pytest

from components.config import SyntheticDataConfig, TrainConfig
from flows.demo import DemoConfig, run_demo
from flows.steps.platform import Platform

pytestmark = pytest.mark.slow

LENIENT_POLICY = """
name: e2e
floors:
  synthetic_test/t2i_r1: 0.0
non_regression:
  synthetic_test/mean_recall: 0.05
"""


def test_lifecycle_twice(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client

    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT_POLICY)
    config = DemoConfig(data=SyntheticDataConfig(train_images=200, val_images=20, test_images=20),
                        train=TrainConfig(optim={"max_steps": 40, "warmup_steps": 5}, data={"batch_size": 64},
                                          logging={"checkpoint_every_n_steps": 20, "val_every_n_steps": 20}),
                        gate_policy=str(policy), domains=["remote_sensing"], finetune_steps=30,
                        upgrade=None)  # the demo's upgrade: tests/e2e/test_compatible_upgrade.py
    first = run_demo(config)
    registry = Platform.from_env().registry()
    report, measured = first.validated.report, first.judged.measured
    assert report.passed and report.rows_in == 240 * 5 == report.rows_kept
    assert first.version == 1 and first.promoted_to == "production"
    assert measured.sizes == {"synthetic_test": (20, 100)}
    t2i, chance = measured.metrics["synthetic_test/t2i_r1"], measured.chance["synthetic_test/t2i_r1"]
    assert chance == pytest.approx(1 / 20) and t2i > chance  # 40 steps already beat chance
    assert first.smoke.passed and first.bento_tag.startswith("alignops-embedding:")
    record = registry.get_version("general", 1)
    assert record.lineage.datasets["train"] == first.validated.dataset.ref
    assert record.lineage.dataset_hashes["train"] == first.validated.dataset.hash and first.validated.dataset.versioned
    assert record.metrics == measured.metrics and record.gate_passed and record.gate.policy == "e2e"
    assert registry.get_alias("general", "candidate").version == 1
    assert any(e.event == "packaged" and e.details["bento"] == first.bento_tag for e in registry.events("general"))

    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"validation-checks", "validation-summary", "training-progress", "training-run", "evaluation",
            "registry-change", "bento"} <= keys

    summary = json.loads((Platform.from_env().home / "demo-summary.json").read_text())
    (adapted,) = summary["finetune"]  # the promoted general model, adapted to the domain
    assert adapted["parent"] == "general:1" and adapted["model"] == "remote_sensing"
    assert registry.get_version("remote_sensing", adapted["version"]).lineage.parent_model == "general:1"

    # Same data and config: the validated version is cached, the finished run is reused, not retrained, and
    # the run's registration is the one it already made (registration is idempotent per run).
    second = run_demo(config.model_copy(update={"package": False, "domains": []}))
    assert second.validated.dataset == first.validated.dataset and second.version == 1
    non_regression = next(r for r in second.judged.verdict.rules if r.rule == "non_regression")
    assert non_regression.threshold == pytest.approx(measured.metrics["synthetic_test/mean_recall"] - 0.05)
    assert second.judged.measured.metrics == pytest.approx(measured.metrics)
    assert [v.version for v in registry.list_versions("general")] == [1]
    assert registry.get_alias("general", "production").version == 1
    assert registry.get_alias("general", "production").history == []  # not moved onto itself
