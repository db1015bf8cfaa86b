"""`continual` end to end on the Prefect test API: three phases of generated data that show different things
(shapes, aerial tiles, pedestrians), a retention matrix recorded on the version with its figures, and a gate
that refuses the stream when a phase forgot more than its policy tolerates."""

import pytest
import torch

from components.config import SyntheticDataConfig, TrainConfig, preset
from components.data.generators import generate_domain_dataset
from components.data.generators.synthetic import generate_dataset
from components.data.manifest import read_manifest
from components.data.reference import DatasetRef
from components.evaluation.metric_names import AVERAGE_FORGETTING, BACKWARD_TRANSFER
from components.evaluation.retention import Retention
from components.models.artifact import Lineage, ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.text.tokenizer import train_tokenizer
from flows.continual import ContinualConfig, continual
from flows.steps.platform import Platform

pytestmark = pytest.mark.slow
TRAIN = TrainConfig(optim={"max_steps": 40, "warmup_steps": 5, "learning_rate": 1e-3}, data={"batch_size": 32},
                    logging={"checkpoint_every_n_steps": 30, "val_every_n_steps": 30, "wandb": False})


@pytest.fixture(scope="module")
def stream(tmp_path_factory, prefect_harness):
    """Three phases' data and an untrained base whose tokenizer knows all their words."""
    root = tmp_path_factory.mktemp("continual")
    generate_dataset(SyntheticDataConfig(seed=3, train_images=64, val_images=8, test_images=16), root / "shapes")
    for name in ("remote_sensing", "person"):
        generate_domain_dataset(name, root / name, images=100, seed=3)
    phases = [root / "shapes", root / "remote_sensing" / "dataset", root / "person" / "dataset"]
    captions = [c for phase in phases for c in read_manifest(phase)["caption"]]
    torch.manual_seed(0)
    config = preset("tiny")
    tokenizer = train_tokenizer(captions, config.tokenizer)
    config.tokenizer.vocab_size = tokenizer.vocab_size
    registry = Platform.from_env().registry()
    version = registry.register("stream-base", ModelArtifact(DualEncoder(config).eval(), tokenizer, Lineage()).save(
        root / "base")).version
    return [DatasetRef(path=str(p)) for p in phases], version


def test_three_phases_record_their_retention_and_a_tight_forgetting_limit_refuses_them(stream):
    phases, base_version = stream
    result = continual(ContinualConfig(name="stream", base_model=f"stream-base:{base_version}", phases=phases,
                                       method="finetune", train=TRAIN, max_forgetting=0.0))
    matrix = result.retention.matrix
    assert [len(row) for row in matrix] == [1, 2, 3]  # after phase j, phases 1..j measured
    assert all(0.0 <= value <= 1.0 for row in matrix for value in row)
    # the figures follow from the matrix (Chaudhry et al.'s forgetting, Lopez-Paz & Ranzato's transfer)
    forgetting = (max(matrix[0][0], matrix[1][0]) - matrix[2][0] + matrix[1][1] - matrix[2][1]) / 2
    transfer = (matrix[2][0] - matrix[0][0] + matrix[2][1] - matrix[1][1]) / 2
    assert result.measured.metrics[AVERAGE_FORGETTING] == pytest.approx(forgetting, abs=1e-12)
    assert result.measured.metrics[BACKWARD_TRANSFER] == pytest.approx(transfer, abs=1e-12)
    # the last row is the registered model's own figures, measured again by the candidate pipeline
    assert matrix[2][2] == pytest.approx((result.measured.metrics["phase3_test/i2t_r1"]
                                          + result.measured.metrics["phase3_test/t2i_r1"]) / 2, abs=1e-9)
    assert forgetting > 0  # learning aerial tiles and pedestrians cost the shapes: the limit of 0 refuses it
    (rule,) = [r for r in result.verdict.rules if r.rule == "max_forgetting"]
    assert not rule.passed and not result.verdict.passed and AVERAGE_FORGETTING in rule.reason
    registry = Platform.from_env().registry()
    record = registry.get_version("stream", result.version)
    assert Retention.model_validate(record.lineage.training["continual"]) == result.retention
    assert result.retention.phases == [p.recorded for p in phases] and record.tags["continual"] == "finetune"
    assert str(phases[0].path) not in record.model_dump_json()  # recorded by name, never a local path
    assert record.metrics[AVERAGE_FORGETTING] == result.measured.metrics[AVERAGE_FORGETTING]
    assert registry.get_alias("stream", "candidate") is None  # refused: registered for the record only
    assert record.lineage.parent_model == f"stream-base:{base_version}"
    run = next(Platform.from_env().runs.glob("continual-stream-base-*"))
    assert (run / "retention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # continuing this stream would measure its phases again: they are no dataset versions, and it says so
    with pytest.raises(ValueError, match="no dataset version.*alignops data add"):
        continual(ContinualConfig(name="stream", base_model=f"stream:{result.version}", phases=phases[:1],
                                  train=TRAIN))
