"""A Dask cluster on SLURM for alignops' data work, through dask-jobqueue: the scheduler runs here (a login
node), each SLURM job starts worker processes that connect back to it. Flows and commands reach it with
`--cluster tcp://HOST:PORT` or `ALIGNOPS_DASK_ADDRESS`.

    python -m infra.dask_slurm --host 10.0.0.5 --jobs 4 --cores 16 --memory 120GB --walltime 08:00:00
    python -m infra.dask_slurm --host 10.0.0.5 --jobs 2 --gpus 4 --partition gpu --print-script

`--host` is the address compute nodes reach this node at: there is no default, so the scheduler never listens
beyond what was chosen. Workers read images where the dataset lives (a shared filesystem or S3, credentials from
the job's environment) and write their parts under ALIGNOPS_PARTS, a folder every node mounts, or an S3 prefix.
With `--gpus`, each job runs one worker per GPU, each declaring the `GPU` resource embedding partitions ask for.
SLURM hands each job the environment it was submitted from (ALIGNOPS_PARTS, ALIGNOPS_REGISTRY,
ALIGNOPS_TRUSTED_KEYS, PREFECT_API_URL, the AWS variables or profile): nothing is written into the script.
The cluster runs until interrupted (Ctrl-C), then cancels its jobs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def parser() -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parsed.add_argument("--host", required=True, help="the address compute nodes reach the scheduler at")
    parsed.add_argument("--port", type=int, default=8786)
    parsed.add_argument("--dashboard-port", type=int, default=8787)
    parsed.add_argument("--jobs", type=int, default=1, help="SLURM jobs to start")
    parsed.add_argument("--cores", type=int, default=8, help="cores per job")
    parsed.add_argument("--memory", default="32GB", help="memory per job")
    parsed.add_argument("--gpus", type=int, default=0, help="GPUs per job: one worker process each")
    parsed.add_argument("--processes", type=int, default=None, help="worker processes per job (default: one "
                                                                     "per GPU, else one per 4 cores)")
    parsed.add_argument("--walltime", default="04:00:00")
    parsed.add_argument("--partition", default=None, help="the SLURM partition (queue)")
    parsed.add_argument("--account", default=None)
    parsed.add_argument("--print-script", action="store_true", help="print one job's script and exit")
    return parsed


def job_options(args: argparse.Namespace) -> dict:
    """dask-jobqueue's options for one SLURM job of workers."""
    processes = args.processes or (args.gpus if args.gpus else max(1, args.cores // 4))
    directives = [f"--gpus-per-node={args.gpus}"] if args.gpus else []
    return {
        # one thread per worker process (`cores` counts threads): the image work parallelises by process, torch
        # by its own threads; `job_cpu` is what SLURM reserves
        "cores": processes, "job_cpu": args.cores, "processes": processes, "memory": args.memory,
        "walltime": args.walltime, "queue": args.partition, "account": args.account,
        "job_extra_directives": directives,
        "worker_extra_args": ["--resources", "GPU=1"] if args.gpus else [],
        "job_script_prologue": ["export DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false",
                                "export OMP_NUM_THREADS=$(( SLURM_CPUS_PER_TASK / " + str(processes) + " ))"],
        "job_name": "alignops-dask",
    }


def cluster(args: argparse.Namespace):
    from dask_jobqueue import SLURMCluster

    options = {key: value for key, value in job_options(args).items() if value is not None}
    return SLURMCluster(scheduler_options={"host": args.host, "port": args.port,  # the dashboard on the same host
                                           "dashboard_address": f"{args.host}:{args.dashboard_port}"}, **options)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    running = cluster(args)
    if args.print_script:
        print(running.job_script())
        running.close()
        return
    running.scale(jobs=args.jobs)
    print(f"scheduler: {running.scheduler_address}  (use --cluster {running.scheduler_address}); Ctrl-C stops it",
          file=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()


if __name__ == "__main__":
    main()
