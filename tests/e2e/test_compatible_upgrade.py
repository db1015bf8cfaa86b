"""A model upgrade that keeps the old galleries searchable, through the lifecycle flow on generated data: v1
trained and promoted; v2 trained from another seed without compatibility searches v1's gallery at about
chance; v2 trained `--compatible-with` v1 (bct) searches it at least as well as v1 itself, keeps its own
recall, and is registered sharing v1's embedding space with the evidence."""

import pytest

from components.compat.cross_model import measure_compatibility
from components.config import SyntheticDataConfig, TrainConfig
from components.data.generators.synthetic import generate_dataset
from components.data.reference import DatasetRef
from components.evaluation.suites import EvalTarget
from components.models.embedder import Embedder
from flows.lifecycle import LifecycleConfig, lifecycle
from flows.settings import Platform

pytestmark = pytest.mark.slow

POLICY = """
name: e2e-compatible
floors:
  synthetic_test/t2i_r1: 0.0
compatibility:
  synthetic_test/t2i_r1: 0.02
"""
NAME = "compatible-upgrade"


def trained(dataset, policy, steps: int, seed: int, **config):
    train = TrainConfig(seed=seed, optim={"max_steps": steps, "warmup_steps": 5}, data={"batch_size": 64},
                        logging={"checkpoint_every_n_steps": steps, "val_every_n_steps": steps})
    return lifecycle(LifecycleConfig(model_name=NAME, dataset=DatasetRef(path=str(dataset)), train=train,
                                     gate_policy=str(policy), package=False, run_name=f"{NAME}-{seed}-{steps}",
                                     **config))


def test_an_upgrade_trained_compatible_searches_the_old_gallery(prefect_harness, tmp_path):
    dataset, policy = tmp_path / "synthetic", tmp_path / "policy.yaml"
    generate_dataset(SyntheticDataConfig(train_images=400, val_images=20, test_images=100), dataset)
    policy.write_text(POLICY)
    v1 = trained(dataset, policy, steps=40, seed=0)
    assert v1.promoted_to == "production"
    plain = trained(dataset, policy, steps=20, seed=1, promote_to=None)  # another space is all it needs to be
    upgrade = trained(dataset, policy, steps=80, seed=1, promote_to=None, compatible_with=f"{NAME}@production")

    registry = Platform.from_env().registry()
    models = {r.version: Embedder.load(registry.download(NAME, r.version, tmp_path / str(r.version)))
              for r in (v1.judged.record, plain.judged.record)}
    target = EvalTarget(name="synthetic_test", dataset_dir=str(dataset), split="test")
    without = measure_compatibility(models[plain.version], models[v1.version], target)
    assert without.cross["xm/synthetic_test/t2i_r1"] <= 0.05  # chance is 0.01: another seed, another space

    measured, verdict = upgrade.judged.measured, upgrade.judged.verdict
    old_own = measured.old_metrics["synthetic_test/t2i_r1"]
    assert old_own == pytest.approx(v1.judged.measured.metrics["synthetic_test/t2i_r1"])  # same model, same split
    assert measured.metrics["xm/synthetic_test/t2i_r1"] >= old_own
    assert measured.metrics["synthetic_test/t2i_r1"] >= old_own - 0.02
    assert verdict.passed and {r.rule for r in verdict.rules} >= {"compatible", "compatible_own"}

    record = registry.get_version(NAME, upgrade.version)
    assert record.embedding_space == v1.judged.record.ref and record.can_query(v1.judged.record.ref)
    (evidence,) = record.compatibility
    assert evidence.via == "bct" and evidence.metrics["xm/synthetic_test/t2i_r1"] == measured.metrics[
        "xm/synthetic_test/t2i_r1"]
    assert [o["name"] for o in record.lineage.model_extra["training"]["optim"]["objectives"]] == [
        "clip", "bct"]
    assert registry.get_version(NAME, plain.version).embedding_space == plain.judged.record.ref
