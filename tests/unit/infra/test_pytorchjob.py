"""The infra files: parsed, with the fields a cluster needs, and consistent with what they run (the launch
entry point and its TrainConfig, the served bento's port and probes)."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.models.artifact import Lineage
from components.training.job import JOB_FILE, TrainingJob
from components.training.launch import parser
from components.validation.validated import ValidatedDataset
from infra.pytorchjob import ClusterJob, render

INFRA = Path(__file__).parents[3] / "infra"


def launch_args(command: list[str]) -> list[str]:
    """The arguments given to `components.training.launch` in a command line."""
    return command[command.index("components.training.launch") + 1:]


def check_pytorchjob(config_map: dict, job: dict) -> None:
    assert job["apiVersion"] == "kubeflow.org/v1" and job["metadata"]["name"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    config = TrainingJob.model_validate_json(config_map["data"][JOB_FILE]).config
    processes = int(job["spec"]["nprocPerNode"])
    assert config.scale.num_nodes == 1 + replicas["Worker"]["replicas"] and config.scale.devices == processes
    assert config.scale.strategy in ("ddp", "fsdp") and all(u.startswith("s3://") for u in config.data.train_shards)
    assert config.logging.checkpoint_dir.startswith("s3://")  # pods share no disk
    for role in ("Master", "Worker"):
        container = replicas[role]["template"]["spec"]["containers"][0]
        assert container["name"] == "pytorch" and container["image"]  # the operator's required container name
        assert container["resources"]["limits"]["nvidia.com/gpu"] == processes
        args = parser().parse_args(launch_args(container["command"]))
        assert str(args.job) == f"/config/{JOB_FILE}"
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secrets  # credentials never inline
        assert not any("value" in e and "SECRET" in e["name"] for e in container["env"])


def test_pytorchjob_example_is_complete_and_consistent():
    documents = list(yaml.safe_load_all((INFRA / "kubernetes" / "pretrain-pytorchjob.yaml").read_text()))
    check_pytorchjob(next(d for d in documents if d["kind"] == "ConfigMap"),
                     next(d for d in documents if d["kind"] == "PyTorchJob"))


def test_the_job_pretrain_submits_is_complete_and_consistent():
    config = TrainConfig(model={"preset": "base"}, data={"train_shards": ["s3://data/train-000000.tar"]},
                         scale={"strategy": "ddp", "devices": 8, "num_nodes": 4, "launcher": "kubernetes"})
    dataset = DatasetRef(path="/data/synthetic", ref="synthetic@1f2e", hash="0123456789abcdef0123456789abcdef.dir")
    data = ValidatedDataset(dataset=dataset,
                            quarantined=frozenset({"bad-1", "bad-2"}))
    training = TrainingJob(config=config, data=data, run_dir="/state/runs/General-1f2e@main",
                           lineage=Lineage(datasets={"train": "synthetic@1f2e"}))
    cluster = ClusterJob(image="registry.example/alignops:1", runs_uri="s3://runs/")
    config_map, job = render(training, cluster, "s3://runs/General-1f2e@main/dataset")
    check_pytorchjob(config_map, job)
    name = job["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name) and config_map["metadata"]["name"] == name
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    args = parser().parse_args(launch_args(container["command"]))
    assert args.dataset == "s3://runs/General-1f2e@main/dataset"
    assert args.artifact_uri == "s3://runs/General-1f2e@main/artifact"
    assert container["command"][container["command"].index("torch.distributed.run") + 1] == "--nproc-per-node=8"
    carried = TrainingJob.model_validate_json(config_map["data"][JOB_FILE])
    assert carried.config.scale.launcher == "torchrun"
    assert carried.config.logging.checkpoint_dir == "s3://runs/General-1f2e@main/checkpoints"
    assert carried.data.quarantined == {"bad-1", "bad-2"} and carried.run_dir == "/runs/General-1f2e@main"
    assert carried.lineage == training.lineage and carried.config.optim == config.optim
    assert job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["serviceAccountName"] == \
        cluster.service_account


def placeholders(value) -> set[str]:
    return set(re.findall(r"{{\s*(\w+)\s*}}", json.dumps(value)))


def test_kubernetes_work_pool_template_and_rbac_agree():
    template = json.loads((INFRA / "kubernetes" / "work-pool.json").read_text())
    variables = template["variables"]["properties"]
    assert placeholders(template["job_configuration"]) <= set(variables)  # Prefect refuses undeclared ones
    manifest = template["job_configuration"]["job_manifest"]
    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == "Job"
    pod = manifest["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert {"ALIGNOPS_REGISTRY", "AWS_ACCESS_KEY_ID", "PREFECT_SERVER_ANALYTICS_ENABLED"} <= set(env)
    assert "valueFrom" in env["AWS_SECRET_ACCESS_KEY"] and "value" not in env["AWS_SECRET_ACCESS_KEY"]

    documents = list(yaml.safe_load_all((INFRA / "kubernetes" / "flows.yaml").read_text()))
    accounts = {d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount"}
    assert variables["service_account_name"]["default"] in accounts
    assert ClusterJob.model_fields["service_account"].default in accounts
    roles = {d["metadata"]["name"]: d["rules"] for d in documents if d["kind"] == "Role"}
    flow_rules = {(g, r): set(rule["verbs"]) for rule in roles[variables["service_account_name"]["default"]]
                  for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"create", "get"} <= flow_rules[("kubeflow.org", "pytorchjobs")]  # what infra/pytorchjob.submit calls
    assert {"create", "update"} <= flow_rules[("", "configmaps")]
    worker = next(d for d in documents if d["kind"] == "Deployment")
    command = worker["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--type") + 1] == "kubernetes"
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] in roles


def test_slurm_script_matches_its_resources():
    text = (INFRA / "training" / "pretrain.sbatch").read_text()
    options = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.M))
    assert {"nodes", "ntasks-per-node", "gpus-per-node", "time"} <= set(options)
    assert options["ntasks-per-node"] == options["gpus-per-node"]  # one task per GPU, as Lightning expects
    srun = next(line for line in text.splitlines() if line.startswith("srun "))
    parser().parse_args([a.strip('"') for a in launch_args(shlex.split(srun))])


def test_shell_scripts_parse():
    for script in ("torchrun.sh", "pretrain.sbatch"):
        subprocess.run(["bash", "-n", str(INFRA / "training" / script)], check=True)
    text = (INFRA / "training" / "torchrun.sh").read_text()
    assert "--nnodes" in text and "--node-rank" in text and "components.training.launch" in text


def test_example_job_is_in_the_sectioned_shape():
    documents = yaml.safe_load_all((INFRA / "kubernetes" / "pretrain-pytorchjob.yaml").read_text())
    raw = json.loads(next(d for d in documents if d["kind"] == "ConfigMap")["data"][JOB_FILE])
    assert set(raw["config"]) <= set(TrainConfig.model_fields)  # sections, not the flat shape of old
    TrainingJob.model_validate(raw)


def test_embedding_service_manifest_agrees_with_the_bento():
    docs = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "kubernetes" / "embedding-service.yaml").read_text())}
    deployment, service, budget = docs["Deployment"], docs["Service"], docs["PodDisruptionBudget"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items() and budget["spec"]["selector"]["matchLabels"].items() \
        <= labels.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # no ready pod removed early
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert container["ports"][0]["containerPort"] == 3000  # bentoml serve's default port in the image
    assert container["readinessProbe"]["httpGet"]["path"] == container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pause + 30  # the pause, then in-flight requests drain
    env = {e["name"]: e for e in container["env"]}
    assert env["BENTOML_DO_NOT_TRACK"]["value"] == "true"
    assert env["OMP_NUM_THREADS"]["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"
    assert "cpu" in container["resources"]["requests"]
    # The probes are the paths a credential is not asked for; every other path needs the secret's API keys.
    from serving.auth import AUTH_VARIABLES, OPEN_PATHS

    assert {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")} <= OPEN_PATHS
    assert "ALIGNOPS_API_KEYS" in AUTH_VARIABLES and env["ALIGNOPS_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"]
