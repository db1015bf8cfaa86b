"""The Dask clusters in infra/: the SLURM job script dask-jobqueue writes, and the dask-kubernetes manifest. What
they must hold: GPU workers that declare the resource embedding partitions ask for, one thread per worker,
credentials by reference only, a scheduler no one outside reaches."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.dask_slurm import main

INFRA = Path(__file__).resolve().parents[3] / "infra"


def test_the_slurm_job_starts_one_gpu_worker_per_gpu_and_writes_no_credential(capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-in-a-script")
    main(["--host", "127.0.0.1", "--port", "0", "--dashboard-port", "0", "--gpus", "4", "--cores", "32",
          "--partition", "gpu", "--print-script"])
    script = capsys.readouterr().out
    assert "#SBATCH --gpus-per-node=4" in script and "#SBATCH -p gpu" in script
    assert "--nworkers 4" in script and "--nthreads 1 " in script and "--resources GPU=1" in script
    assert "#SBATCH --cpus-per-task=32" in script
    assert "tcp://127.0.0.1:" in script  # workers connect back to the host named, nothing else
    assert "never-in-a-script" not in script and "AWS_" not in script


def test_the_kubernetes_cluster_keeps_its_scheduler_inside_and_its_credentials_in_secrets():
    documents = list(yaml.safe_load_all((INFRA / "kubernetes" / "dask-cluster.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"DaskCluster", "DaskWorkerGroup", "NetworkPolicy"}
    assert kinds["DaskCluster"]["spec"]["scheduler"]["service"]["type"] == "ClusterIP"
    gpu = kinds["DaskWorkerGroup"]["spec"]["worker"]["spec"]["containers"][0]
    assert gpu["args"][gpu["args"].index("--resources") + 1] == "GPU=1"
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    containers = [kinds["DaskCluster"]["spec"][role]["spec"]["containers"][0] for role in ("worker", "scheduler")]
    for container in [*containers, gpu]:
        env = {e["name"]: e for e in container["env"]}
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PREFECT_API_URL"} <= set(env)
        assert all("valueFrom" in env[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
        assert env["ALIGNOPS_PARTS"]["value"].startswith("s3://")  # parts every worker and flow can reach
