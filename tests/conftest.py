from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.runtime import configure_environment

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def pytest_configure(config):
    """Under xdist each worker gets an equal share of the cores, for itself and the processes it starts: two
    workers at two threads each would oversubscribe two cores, and OpenMP slows down threefold when it does."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        import torch

        torch.set_num_threads(int(threads))


@pytest.fixture(scope="session", autouse=True)
def alignops_home(tmp_path_factory) -> Path:
    """Every tool's state, and telemetry off, in one temporary state directory for the session."""
    home = configure_environment(tmp_path_factory.mktemp("alignops-home"))
    os.environ["ALIGNOPS_ACTOR"] = "pytest"
    # The platform's signing key, trusted, as `alignops keys create pytest` makes it: production holds only
    # signed versions by default, and what the suite promotes is signed like a user's would be.
    from flows.steps.platform import Platform

    platform = Platform(home=home)
    platform.create_signing_key("pytest")
    # Named in the environment, so tests that run in a state directory of their own sign and trust the same.
    os.environ.update({"ALIGNOPS_SIGNING_KEY": str(platform.signing_key),
                       "ALIGNOPS_TRUSTED_KEYS": str(platform.trusted_keys)})
    # Prefect's console log handler keeps the sys.stderr current when logging is first set up (on the first
    # `from prefect import flow`). Inside a CLI test that is CliRunner's stream, closed afterwards, and every
    # later Prefect log line then fails; set logging up here, on the real stderr.
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real test data is absent: expected {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness(alignops_home):
    """One Prefect test API for the whole session (starting one costs ~8 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    from components.config import SyntheticDataConfig
    from components.data.generators.synthetic import generate_dataset

    path = tmp_path_factory.mktemp("tiny-dataset")
    generate_dataset(SyntheticDataConfig(seed=1, train_images=160, val_images=16, test_images=20), path)
    return path


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, tiny_dataset) -> Path:
    """An untrained tiny model saved as an artifact (the artifact contract does not need training)."""
    import torch

    from components.config import preset
    from components.data.manifest import read_manifest
    from components.models.artifact import Lineage, ModelArtifact
    from components.models.dual_encoder import DualEncoder
    from components.text.tokenizer import train_tokenizer

    torch.manual_seed(0)
    config = preset("tiny")
    tokenizer = train_tokenizer(read_manifest(tiny_dataset)["caption"], config.tokenizer)
    config.tokenizer.vocab_size = tokenizer.vocab_size
    artifact = ModelArtifact(DualEncoder(config).eval(), tokenizer, Lineage(datasets={"train": "tiny@test"}))
    return artifact.save(tmp_path_factory.mktemp("artifact") / "tiny")


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3 API for the session; boto3 finds it through the standard environment variables."""
    from registry.local_s3 import MotoServer

    server = MotoServer()
    os.environ.update({"AWS_ENDPOINT_URL_S3": server.url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_s3) -> str:
    import uuid

    import boto3

    name = f"registry-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
