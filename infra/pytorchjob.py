"""Multi-node pretraining submitted from the `pretrain` flow as a Kubeflow PyTorchJob, and waited for.

The job is the one `infra/kubernetes/pretrain-pytorchjob.yaml` documents: a ConfigMap with the run's
training job (config, validated dataset, lineage) and a PyTorchJob whose pods run torchrun over
`components.training.launch`. Pods share no disk with the flow: the dataset and the checkpoints live on
S3, and rank 0 uploads the artifact to `<runs_uri>/<run>/artifact`, from where the flow takes it.

Submitting is idempotent: a flow re-run with the same run name finds the job already there and waits for
it instead of starting a second one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import fsspec
from pydantic import BaseModel, Field

from components.training.job import JOB_FILE, TrainingJob
from components.training.launch import ARTIFACT_DIR, LOSS_CURVE

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
TERMINAL = ("Succeeded", "Failed")


class ClusterJob(BaseModel):
    """Where and how the pretrain flow runs training on Kubernetes."""
    image: str = Field(description="an image with alignops installed (the flows' image)")
    runs_uri: str = Field(pattern=r"^s3://", description="s3:// prefix for checkpoints and the artifact")
    namespace: str = "alignops"
    service_account: str = "alignops-trainer"
    s3_secret: str = Field("alignops-s3", description="Secret with access-key-id, secret-access-key[, endpoint-url]")
    gpus_per_node: int = Field(8, ge=0)
    cpu: str = "64"
    memory: str = "480Gi"
    poll_s: float = Field(30, gt=0)
    timeout_s: float = Field(7 * 24 * 3600, gt=0)


class TrainingJobFailed(RuntimeError):
    pass


def job_name(run_name: str) -> str:
    """A DNS-1123 name for the run's job (lower case, dashes, at most 63 characters)."""
    cleaned = "".join(c if c.isalnum() else "-" for c in run_name.lower()).strip("-")
    return f"alignops-{cleaned}"[:63].rstrip("-")


def render(job: TrainingJob, cluster: ClusterJob, dataset_uri: str) -> tuple[dict, dict]:
    """(ConfigMap, PyTorchJob) for the job: `num_nodes` pods of `devices` processes each, reading the dataset
    from `dataset_uri` and checkpointing under `<runs_uri>/<run>/`."""
    run_name = Path(job.run_dir).name
    name, run_uri = job_name(run_name), f"{cluster.runs_uri.rstrip('/')}/{run_name}"
    checkpoints = job.config.logging.checkpoint_dir or f"{run_uri}/checkpoints"
    config = job.config.changed(logging={"checkpoint_dir": checkpoints}, scale={"launcher": "torchrun"})
    # The ConfigMap (at most 1 MiB) carries the quarantined ids, not the whole validation report.
    pod_job = job.model_copy(update={"config": config, "run_dir": f"/runs/{run_name}",
                                     "data": job.data.model_copy(update={"report": None})})
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": cluster.namespace},
                  "data": {JOB_FILE: pod_job.model_dump_json(indent=2)}}
    command = ["python", "-m", "torch.distributed.run", f"--nproc-per-node={config.scale.devices}",
               "-m", "components.training.launch", "--job", f"/config/{JOB_FILE}", "--dataset", dataset_uri,
               "--run-dir", pod_job.run_dir, "--artifact-uri", f"{run_uri}/{ARTIFACT_DIR}"]
    secret = {"name": cluster.s3_secret}
    env = [{"name": "WANDB_MODE", "value": "offline"}, {"name": "DVC_NO_ANALYTICS", "value": "1"},
           {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": secret | {"key": "access-key-id"}}},
           {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": secret | {"key": "secret-access-key"}}},
           {"name": "AWS_ENDPOINT_URL_S3",
            "valueFrom": {"secretKeyRef": secret | {"key": "endpoint-url", "optional": True}}}]
    limits = {"memory": cluster.memory} | ({"nvidia.com/gpu": cluster.gpus_per_node} if cluster.gpus_per_node else {})
    pod = {"spec": {
        "serviceAccountName": cluster.service_account,
        "containers": [{"name": "pytorch", "image": cluster.image, "command": command, "env": env,
                        "resources": {"limits": limits, "requests": {"cpu": cluster.cpu, "memory": cluster.memory}},
                        "volumeMounts": [{"name": "config", "mountPath": "/config"},
                                         {"name": "dshm", "mountPath": "/dev/shm"},
                                         {"name": "runs", "mountPath": "/runs"}]}],
        "volumes": [{"name": "config", "configMap": {"name": name}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory"}}, {"name": "runs", "emptyDir": {}}]}}
    replicas = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod}}
    if config.scale.num_nodes > 1:
        replicas["Worker"] = {"replicas": config.scale.num_nodes - 1, "restartPolicy": "OnFailure", "template": pod}
    job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PyTorchJob",
           "metadata": {"name": name, "namespace": cluster.namespace,
                        "labels": {"app.kubernetes.io/part-of": "alignops", "alignops/run": name}},
           "spec": {"nprocPerNode": str(config.scale.devices),
                    "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": 10},
                    "pytorchReplicaSpecs": replicas}}
    return config_map, job


def api_clients():
    """(CoreV1Api, CustomObjectsApi) from the pod's service account, else from the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(os.environ.get("KUBECONFIG"))  # the client reads KUBECONFIG only at import
    return client.CoreV1Api(), client.CustomObjectsApi()


def submit(config_map: dict, job: dict, clients=None) -> None:
    """Create the ConfigMap and the job unless the job already exists (a re-run waits for it)."""
    from kubernetes.client.exceptions import ApiException

    core, custom = clients or api_clients()
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    try:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return
    except ApiException as error:
        if error.status != 404:
            raise
    try:
        core.create_namespaced_config_map(namespace, config_map)
    except ApiException as error:
        if error.status != 409:
            raise
        core.replace_namespaced_config_map(name, namespace, config_map)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)


def job_state(job: dict) -> tuple[str | None, str]:
    """(the newest true condition's type, its message)."""
    conditions = [c for c in (job.get("status") or {}).get("conditions", []) if c.get("status") == "True"]
    if not conditions:
        return None, ""
    newest = conditions[-1]
    return newest["type"], newest.get("message", "")


def wait(job: dict, cluster: ClusterJob, clients=None, report=print) -> None:
    """Poll the job until it succeeds; raise with the operator's message when it fails or times out."""
    _, custom = clients or api_clients()
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    deadline, last = time.monotonic() + cluster.timeout_s, None
    while time.monotonic() < deadline:
        state, message = job_state(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        if state != last:
            report(f"PyTorchJob {namespace}/{name}: {state or 'Pending'} {message}".rstrip())
            last = state
        if state == "Succeeded":
            return
        if state == "Failed":
            raise TrainingJobFailed(f"PyTorchJob {namespace}/{name} failed: {message}; `kubectl -n {namespace} logs "
                                    f"-l training.kubeflow.org/job-name={name}` shows the ranks' output, and "
                                    "re-running the flow with the same run name resumes from the S3 checkpoints")
        time.sleep(cluster.poll_s)
    raise TrainingJobFailed(f"PyTorchJob {namespace}/{name} did not finish within {cluster.timeout_s:.0f} s")


def fetch_artifact(cluster: ClusterJob, run_name: str, run_dir: Path) -> Path:
    """Copy the artifact rank 0 uploaded (and its loss curve) into the flow's run directory."""
    source = f"{cluster.runs_uri.rstrip('/')}/{run_name}"
    fs, path = fsspec.core.url_to_fs(source)
    if not fs.exists(f"{path}/{ARTIFACT_DIR}"):
        raise TrainingJobFailed(f"the job succeeded but wrote no artifact at {source}/{ARTIFACT_DIR}")
    target = run_dir / ARTIFACT_DIR
    target.mkdir(parents=True, exist_ok=True)
    fs.get(f"{path}/{ARTIFACT_DIR}/", str(target), recursive=True)
    if fs.exists(f"{path}/{LOSS_CURVE}"):
        fs.get_file(f"{path}/{LOSS_CURVE}", str(run_dir / LOSS_CURVE))
    return target
