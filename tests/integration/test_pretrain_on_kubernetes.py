"""`pretrain` with launcher `kubernetes`: the flow uploads the dataset to S3 (moto), submits the PyTorchJob
through the kubernetes client (kubeconfig -> tests/integration/kube_api.py, which runs the job's command
here), waits for it, and takes the artifact rank 0 uploaded. No cluster runs on this machine: the API
server is a stand-in; the job's command, S3 and the training are real."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobs import job
from kube_api import FakeCluster

from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.models.artifact import ModelArtifact
from components.training.job import JOB_FILE, TrainingJob
from infra.pytorchjob import ClusterJob, TrainingJobFailed, render, submit, wait

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    fake = FakeCluster(tmp_path / "cluster")
    monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
    yield fake
    fake.stop()


def job_settings(bucket: str) -> ClusterJob:
    return ClusterJob(image="alignops:test", runs_uri=f"s3://{bucket}/runs", namespace="ml", gpus_per_node=0,
                      poll_s=0.5, timeout_s=300)


def test_the_flow_submits_waits_and_takes_the_artifact(prefect_harness, tiny_dataset, s3_bucket, cluster, tmp_path,
                                                       monkeypatch):
    from flows.pretrain import pretrain

    monkeypatch.setenv("ALIGNOPS_HOME", str(tmp_path / "home"))
    config = TrainConfig(optim={"max_steps": 4, "warmup_steps": 1}, data={"batch_size": 16},
                         logging={"checkpoint_every_n_steps": 2, "val_every_n_steps": 2, "wandb": False},
                         scale={"launcher": "kubernetes"})
    settings, dataset = job_settings(s3_bucket), DatasetRef(path=str(tiny_dataset), ref="tiny@1")
    artifact_dir = pretrain(dataset, config, "k8s-run", cluster=settings)

    artifact = ModelArtifact.load(artifact_dir)
    assert artifact.lineage.training["steps"] == 4 and artifact.lineage.datasets == {"train": "tiny@1"}
    (key, job), = cluster.jobs.items()
    assert key == ("ml", "alignops-k8s-run") and job["status"]["conditions"][-1]["type"] == "Succeeded"
    carried = TrainingJob.model_validate_json(cluster.config_maps[key]["data"][JOB_FILE])
    assert carried.config.logging.checkpoint_dir == f"s3://{s3_bucket}/runs/k8s-run/checkpoints"

    again = pretrain(dataset, config, "k8s-run", cluster=settings)
    assert cluster.created_jobs == 1  # the re-run found the job and waited for it
    assert ModelArtifact.load(again).lineage.training["steps"] == 4


def test_a_failed_job_fails_with_the_operators_message(tiny_dataset, s3_bucket, cluster):
    from infra.pytorchjob import api_clients

    settings = job_settings(s3_bucket)
    broken = job(TrainConfig(optim={"max_steps": 2}, logging={"wandb": False}), Path("/nowhere"), Path("/runs/broken"))
    config_map, job_ = render(broken, settings, f"s3://{s3_bucket}/nothing")
    clients = api_clients()
    submit(config_map, job_, clients)
    with pytest.raises(TrainingJobFailed, match="failed: exit 1"):
        wait(job_, settings, clients, report=lambda line: None)
