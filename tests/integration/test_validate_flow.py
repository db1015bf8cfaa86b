"""The `validate_data` flow on the Prefect test API: its policy, its artifacts, and its cache."""

import shutil

import pytest

from components.config import ValidationConfig
from components.data.reference import DatasetRef
from flows.validate_data import DatasetRejected, validate_data
from infra.workspace import directory_md5

pytestmark = pytest.mark.slow


@pytest.fixture
def dataset(tiny_dataset, tmp_path):
    path = tmp_path / "ds"
    shutil.copytree(tiny_dataset, path)
    (path / "images" / "train" / "syn-train-00000.jpg").write_bytes(b"")  # 5 of 1,000 rows go bad
    return path


def test_policy_fails_and_passes_the_flow_and_caches_by_version(prefect_harness, dataset, scans):
    from prefect.client.orchestration import get_client

    versioned = DatasetRef(path=str(dataset), ref="ds@test", hash=directory_md5(dataset))
    with pytest.raises(DatasetRejected, match=r"rejected fraction 0.5% \(limit 0%\)") as rejected:
        validate_data(versioned, ValidationConfig(max_rejected_fraction=0.0))
    assert rejected.value.report.rows_quarantined == 5  # the refusal carries its report
    validated = validate_data(versioned, ValidationConfig(max_rejected_fraction=0.01))
    report = validated.report
    assert report.passed and report.rows_quarantined == 5 and len(scans) == 2  # another policy: scanned again
    assert {q.reason for q in report.quarantine} == {"empty (0-byte) file"}
    assert validated.dataset == versioned and validated.quarantined == report.quarantined_ids
    assert len(validated.quarantined) == 5

    again = validate_data(versioned, ValidationConfig(max_rejected_fraction=0.01))
    assert again == validated and len(scans) == 2  # the same version and suite: not scanned again
    validate_data(DatasetRef(path=str(dataset)), ValidationConfig(max_rejected_fraction=0.01))
    assert len(scans) == 3  # no DVC hash, no cache

    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"validation-checks", "validation-summary", "validation-data-docs"} <= keys
