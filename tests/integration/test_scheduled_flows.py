"""The flows the schedules and triggers run: `reevaluate` re-measures a registered version on the eval-set
catalog at the datasets' newest revisions; `finetune_on_change` skips a dataset version it already finetuned
on; `continual_on_change` learns each new version as one more phase of a stream."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from components.config import SyntheticDataConfig, TrainConfig
from components.data.generators import generate_domain_dataset
from components.data.generators.synthetic import generate_dataset
from components.evaluation.suites import measure
from components.models.embedder import Embedder
from flows.continual import WatchedStream, continual_on_change
from flows.finetune_on_change import WatchedDataset, finetune_on_change
from flows.reevaluate import reevaluate
from flows.steps.platform import Platform
from infra.catalog import EvalSet, add_eval_set, read_catalog
from infra.workspace import track_dataset
from registry.records import LineageRecord

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def own_home(tmp_path_factory):
    """A state directory of this module's own: its workspace's eval-set catalog holds only what it adds."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ALIGNOPS_HOME", str(tmp_path_factory.mktemp("scheduled-home")))
        yield


@pytest.fixture(scope="module")
def tracked(own_home, tiny_dataset):
    platform = Platform.from_env()
    workspace = platform.open_workspace()
    shutil.copytree(tiny_dataset, workspace / "scheduled-tiny")
    return track_dataset(workspace, workspace / "scheduled-tiny", "tiny dataset for the scheduled flows")


def test_catalog_entries_are_committed_and_replaced_by_name(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    add_eval_set(tmp_path, EvalSet(name="coco_test", dataset="old"))
    add_eval_set(tmp_path, EvalSet(name="cxr_test", dataset="cxr", domain="medical"))
    add_eval_set(tmp_path, EvalSet(name="coco_test", dataset="coco", split="val"))
    assert read_catalog(tmp_path) == [EvalSet(name="coco_test", dataset="coco", split="val"),
                                      EvalSet(name="cxr_test", dataset="cxr", domain="medical")]
    log = subprocess.run(["git", "-C", str(tmp_path), "log", "--format=%s"], capture_output=True, text=True).stdout
    assert log.splitlines() == ["Eval set coco_test: coco (val)", "Eval set cxr_test: cxr (test)",
                                "Eval set coco_test: old (test)"]
    target = read_catalog(tmp_path)[1].target("/data/cxr")
    assert (target.name, target.suite, target.prompt_domain, target.dataset_dir) == \
        ("cxr_test", "zero_shot", "medical", "/data/cxr")
    with pytest.raises(ValueError, match="unknown preset"):
        EvalSet(name="x_test", dataset="x", domain="astronomy")
    with pytest.raises(ValueError, match="pattern"):
        EvalSet(name="../x", dataset="x")


def test_reevaluate_remeasures_exactly_and_flags_drops(prefect_harness, tiny_artifact, tiny_dataset, tracked):
    platform = Platform.from_env()
    add_eval_set(platform.workspace, EvalSet(name="tiny_test", dataset=tracked.path))
    reference = measure(Embedder.load(tiny_artifact), tiny_dataset, "test").named("tiny_test").metrics
    registered = reference | {"tiny_test/mean_recall": reference["tiny_test/mean_recall"] + 0.5}
    registry = platform.registry()
    record = registry.register("reeval", tiny_artifact, metrics=registered, reason="reevaluate test")

    result = reevaluate(f"reeval:{record.version}", tolerance=0.02)

    assert result.datasets == {"tiny_test": tracked.ref}
    assert result.metrics == reference  # the same computation on the same bytes
    assert list(result.drops) == ["tiny_test/mean_recall"]
    assert result.drops["tiny_test/mean_recall"] == pytest.approx(0.5)
    event = [e for e in registry.events("reeval") if e.event == "reevaluated"][-1]
    assert event.version == record.version and event.details["metrics"] == reference


def test_reevaluate_without_eval_sets_says_how_to_add_them(prefect_harness, tiny_artifact):
    registry = Platform.from_env().registry()
    record = registry.register("reeval-empty", tiny_artifact, reason="reevaluate test")
    with pytest.raises(ValueError, match="alignops data add DATASET --eval-set"):
        reevaluate(f"reeval-empty:{record.version}", eval_sets=[])


def test_finetune_on_change_skips_what_it_already_trained_on(prefect_harness, tiny_artifact, tracked):
    registry = Platform.from_env().registry()
    registry.register("watched", tiny_artifact, lineage=LineageRecord(datasets={"train": tracked.ref}), reason="test")
    before = len(registry.list_versions("watched"))
    watched = WatchedDataset(domain="medical", dataset=tracked.path, model_name="watched")
    assert finetune_on_change(watched) is None
    assert len(registry.list_versions("watched")) == before
    assert finetune_on_change(watched.model_copy(update={"dataset": "not-tracked"})) is None


def test_finetune_on_change_trains_once_per_dataset_version(prefect_harness, tiny_artifact, tracked):
    platform = Platform.from_env()
    registry = platform.registry()
    registry.set_alias("watched-base", "production", registry.register("watched-base", tiny_artifact).version)
    dataset = platform.workspace / "aerial-data"
    train = TrainConfig(optim={"max_steps": 3, "warmup_steps": 1}, data={"batch_size": 16},
                        logging={"checkpoint_every_n_steps": 3, "val_every_n_steps": 3, "wandb": False})
    watched = WatchedDataset(domain="remote_sensing", dataset="aerial-data/dataset", general_dataset=tracked.path,
                             base_model="watched-base@production", model_name="aerial-watched", train=train)
    trained_on = []
    for seed in (0, 1):  # a new dataset version each time round
        shutil.rmtree(dataset, ignore_errors=True)
        generate_domain_dataset("remote_sensing", dataset, images=120, seed=seed)
        version = track_dataset(platform.workspace, dataset / "dataset", f"aerial tiles, seed {seed}")
        result = finetune_on_change(watched)
        assert result is not None and result.parent == "watched-base:1"
        trained_on.append(registry.get_version("aerial-watched", result.version).lineage.datasets["train"])
        assert trained_on[-1] == version.ref
        assert finetune_on_change(watched) is None  # the same version again: skipped
    assert len(set(trained_on)) == 2 and len(registry.list_versions("aerial-watched")) == 2


def test_each_new_version_is_one_more_phase_of_the_stream(prefect_harness, tiny_artifact, tmp_path):
    """The second version continues from the stream's `candidate`: its phase-1 test set, checked out again by
    its version, is measured after phase 2 too, and the matrix grows a row."""
    platform = Platform.from_env()
    workspace, registry = platform.open_workspace(), platform.registry()
    registry.register("stream-start", tiny_artifact)
    policy = tmp_path / "open.yaml"
    policy.write_text("name: open\n")  # no rule but the stream's: the alias moves and the stream continues
    train = TrainConfig(optim={"max_steps": 2, "warmup_steps": 1}, data={"batch_size": 16},
                        logging={"checkpoint_every_n_steps": 2, "val_every_n_steps": 2, "wandb": False})
    stream = WatchedStream(dataset="stream-data", name="stream-watched", base_model="stream-start:1",
                           method="lora", train=train, gate_policy=str(policy))
    versions = []
    for seed in (0, 1):
        shutil.rmtree(workspace / "stream-data", ignore_errors=True)
        generate_dataset(SyntheticDataConfig(seed=seed, train_images=32, val_images=4, test_images=8),
                         workspace / "stream-data")
        versions.append(track_dataset(workspace, workspace / "stream-data", f"seed {seed}").ref)
        result = continual_on_change(stream)
        assert result is not None and result.verdict.passed
        assert continual_on_change(stream) is None  # the same version again: skipped
    assert result.retention.phases == versions and [len(row) for row in result.retention.matrix] == [1, 2]
    record = registry.get_version("stream-watched", result.version)
    assert record.lineage.parent_model == "stream-watched:1" and record.lineage.datasets["train"] == versions[1]
    assert "continual/average_forgetting" in record.metrics
