"""The multi-node launch files: parsed, with the fields a cluster needs, and consistent with the entry point
and the TrainConfig they carry."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from components.config import TrainConfig
from components.training.launch import parser

INFRA = Path(__file__).parents[2] / "infra"


def launch_args(command: list[str]) -> list[str]:
    """The arguments given to `components.training.launch` in a command line."""
    return command[command.index("components.training.launch") + 1:]


def test_pytorchjob_is_complete_and_consistent():
    documents = list(yaml.safe_load_all((INFRA / "kubernetes" / "pretrain-pytorchjob.yaml").read_text()))
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    job = next(d for d in documents if d["kind"] == "PyTorchJob")
    assert job["apiVersion"] == "kubeflow.org/v1" and job["metadata"]["name"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    config = TrainConfig.model_validate_json(config_map["data"]["train.json"])
    processes = int(job["spec"]["nprocPerNode"])
    assert config.num_nodes == 1 + replicas["Worker"]["replicas"] and config.devices == processes
    assert config.strategy in ("ddp", "fsdp") and all(u.startswith("s3://") for u in config.train_shards)
    assert config.checkpoint_dir.startswith("s3://")  # pods share no disk
    for role in ("Master", "Worker"):
        container = replicas[role]["template"]["spec"]["containers"][0]
        assert container["name"] == "pytorch" and container["image"]  # the operator's required container name
        assert container["resources"]["limits"]["nvidia.com/gpu"] == processes
        args = parser().parse_args(launch_args(container["command"]))
        assert str(args.config).startswith("/config/")
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secrets  # credentials never inline
        assert not any("value" in e and "SECRET" in e["name"] for e in container["env"])


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


def test_example_config_round_trips():
    documents = yaml.safe_load_all((INFRA / "kubernetes" / "pretrain-pytorchjob.yaml").read_text())
    raw = json.loads(next(d for d in documents if d["kind"] == "ConfigMap")["data"]["train.json"])
    assert set(raw) <= set(TrainConfig.model_fields)  # no field the config would silently ignore
