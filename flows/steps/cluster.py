"""Where the data side's partitioned work runs (`components/partitions`): in this process (the default: today's
speed, nothing to start), on a Dask `LocalCluster` of N worker processes started for the command and stopped
after it (`local:N`), or on an existing Dask cluster (`tcp://HOST:PORT`, or `ALIGNOPS_DASK_ADDRESS`).

On a cluster every partition is a Prefect task of the calling flow run, submitted through prefect-dask's
`DaskTaskRunner`: the UI shows each one, Prefect retries one that fails, and Dask runs again a partition whose
worker was lost. Workers read the images from where the dataset lives and write their part where every worker
and this process can reach it (`parts`: a local folder for `local:N`, a shared folder or an `s3://` prefix
for a remote cluster); only the partition's list of names goes through the scheduler. A Ray runner
(`prefect-ray`) would be one more `Runner` beside `DaskPartitions`."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from components.models.directory import ModelDirectory, loaded_embedder
from components.partitions.plan import CLUSTER_ADDRESS, IN_PROCESS, PartStore, Runner, Work, digest, plan, run_partition

if TYPE_CHECKING:
    from components.models.embedder import Embedder

ADDRESS_VARIABLE = "ALIGNOPS_DASK_ADDRESS"
PARTS_VARIABLE = "ALIGNOPS_PARTS"
RETRIES = 2  # Prefect's, beside Dask's own re-run of a lost worker's partition
PROGRESS_EVERY_S = 10.0
_FETCHING = threading.Lock()


class Cluster(BaseModel):
    """Where partitioned work runs, and how it is cut. Travels whole from the CLI or a form into a flow."""

    address: str = Field("", pattern=CLUSTER_ADDRESS,
                         description="empty: in this process; `local:N`: a Dask LocalCluster of N worker "
                                     "processes for this run; `tcp://HOST:PORT`: an existing Dask scheduler")
    partition_size: int = Field(1024, ge=1, le=1_000_000, description="inputs (images, captions) per partition")
    batch_size: int = Field(64, ge=1, le=65_536, description="images or captions per forward pass on a worker")
    parts: str = Field("", max_length=1024, description="where workers write their parts: empty for "
                       "`<ALIGNOPS_HOME>/parts`; a folder every worker mounts, or `s3://bucket/prefix`")

    @classmethod
    def named(cls, address: str | None = None, **settings: Any) -> Cluster:
        """`address` as given (None: `ALIGNOPS_DASK_ADDRESS`, else in this process)."""
        return cls(address=os.environ.get(ADDRESS_VARIABLE, "") if address is None else address, **settings)

    @property
    def in_process(self) -> bool:
        return not self.address

    @property
    def on_this_machine(self) -> bool:
        """Its workers run here: they can reach this machine's loopback (Prefect's temporary server)."""
        host = self.address.removeprefix("tcp://").rsplit(":", 1)[0]
        return self.address.startswith("local:") or host in ("127.0.0.1", "localhost", "[::1]")

    def runner(self, scope: str) -> Runner:
        """The runner for work on the data `scope` names (a dataset's content key): parts of other data are
        never taken for its own."""
        return IN_PROCESS if self.in_process else DaskPartitions(self, scope)

    def model(self, path: Path, ref: str = "") -> ModelDirectory:
        """A model as the works load it: today's in this process; on a cluster, with the workers' batch size,
        and (a registry version) fetched by a worker that cannot read this machine's folder."""
        if self.in_process:
            return ModelDirectory(path=str(path), ref=ref)
        return (RegistryModel if ref else ModelDirectory)(path=str(path), ref=ref, batch_size=self.batch_size)

    def parts_root(self) -> str:
        from flows.steps.platform import Platform

        return self.parts or os.environ.get(PARTS_VARIABLE) or str(Platform.from_env().home / "parts")

    def task_runner(self):
        from prefect_dask import DaskTaskRunner

        if self.address.startswith("local:"):
            return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
                "n_workers": int(self.address.removeprefix("local:")), "threads_per_worker": 1, "processes": True,
                "host": "127.0.0.1", "dashboard_address": None, "silence_logs": logging.ERROR})
        return DaskTaskRunner(address=self.address)


class RegistryModel(ModelDirectory):
    """A registry version: read from the flow's folder where the worker shares this machine's disk, else
    downloaded from the registry once per worker (its signature verified against the worker's trusted keys)."""

    def load(self) -> Embedder:
        from components.models.artifact import WEIGHTS_FILE

        path = self.path if Path(self.path, WEIGHTS_FILE).is_file() else fetched(self.ref)
        return loaded_embedder(path, self.batch_size, self.device)


def fetched(ref: str) -> str:
    """`ref` downloaded into this worker's state directory, once: later partitions find it there."""
    from components.models.artifact import WEIGHTS_FILE
    from flows.steps.platform import Platform
    from registry.names import parse_ref

    platform, named = Platform.from_env(), parse_ref(ref)
    if named.version is None:
        raise ValueError(f"a worker fetches a version, not {ref!r}: resolve the reference where the flow starts")
    folder = platform.home / "worker-models" / f"{named.name}-{named.version}"
    with _FETCHING:
        if not Path(folder, WEIGHTS_FILE).is_file():
            platform.registry().download(named.name, named.version, folder)
    return str(folder)


@cache
def partition_task():
    """`run_partition` as the Prefect task each partition runs as (made on first use: Prefect is heavy to import)."""
    from prefect import task

    return task(run_partition, name="partition", retries=RETRIES, retry_delay_seconds=2)


class DaskPartitions:
    """`Runner` over a Dask cluster: plan, skip the parts already written, run the rest as Prefect tasks,
    combine in order, then clear the parts."""

    def __init__(self, cluster: Cluster, scope: str):
        self.cluster, self.scope = cluster, scope

    def map(self, work: Work, items: Sequence[str]) -> Any:
        if not items:
            return IN_PROCESS.map(work, items)
        partitions = plan(items, self.cluster.partition_size, work.identity())
        store = PartStore(self.folder(work), work)
        todo = [p for p in partitions if not store.done(p)]
        say(f"[{work.kind}] {len(items):,} inputs in {len(partitions)} partitions"
            + (f" ({len(partitions) - len(todo)} done by an earlier run)" if len(todo) < len(partitions) else "")
            + f" on {self.cluster.address}")
        if todo:
            self._run(work, todo, store.folder)
        combined = work.combine([store.read(p) for p in partitions])
        store.clear()
        return combined

    def folder(self, work: Work) -> str:
        """Where `work`'s parts go: named by the data's scope and the work's identity."""
        return f"{self.cluster.parts_root().rstrip('/')}/{work.kind}-{digest(self.scope, work.identity())[:32]}"

    def _run(self, work: Work, todo: list, folder: str) -> None:
        import dask

        started = time.monotonic()
        with api_for_workers(self.cluster), quiet("distributed"), self.cluster.task_runner() as runner:
            needs_gpu = getattr(work, "model", None) is not None and workers_have_gpu(runner.client)
            futures = {}
            for partition in todo:
                annotations = {"resources": {"GPU": 1}} if needs_gpu else {}
                with dask.annotate(**annotations):
                    named = partition_task().with_options(task_run_name=f"{work.kind}-{partition.index}")
                    future = runner.submit(named, parameters={"work": work, "partition": partition,
                                                              "folder": folder})
                futures[future] = len(partition.items)
            report_progress(work.kind, futures, started)


def report_progress(kind: str, futures: dict, started: float) -> None:
    """Wait for every partition (`futures`: each with its input count), with a progress line every
    `PROGRESS_EVERY_S` (partitions, inputs a second, ETA); the first failure raises."""
    from prefect.futures import as_completed

    from components.training.progress import Pace, duration

    last, inputs, total = started, 0, sum(futures.values())
    for done, future in enumerate(as_completed(list(futures)), start=1):
        future.result()  # a partition that failed past its retries fails the run
        inputs += futures[future]
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done == len(futures):
            last = now
            pace = Pace(inputs, total, now - started)
            say(f"[{kind}] partition {done}/{len(futures)} · {pace.steps_per_s:,.0f} inputs/s · "
                f"ETA {duration(pace.eta_s)}")


def workers_have_gpu(client) -> bool:
    """Whether the cluster's workers declare a `GPU` resource (`dask worker --resources GPU=1`)."""
    workers = client.scheduler_info().get("workers", {}).values()
    return any(worker.get("resources", {}).get("GPU") for worker in workers)


@contextlib.contextmanager
def api_for_workers(cluster: Cluster) -> Iterator[None]:
    """Workers report their task runs to this process's Prefect API. Where that is Prefect's temporary
    server (no `PREFECT_API_URL`), its address is handed to workers on this machine (otherwise each would
    start its own and the partitions would never appear in this run); workers elsewhere cannot reach it."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    if not cluster.on_this_machine:
        raise ValueError(f"the Dask cluster at {cluster.address} runs elsewhere, and its workers cannot reach "
                         "Prefect's temporary server on this machine: run a Prefect server they reach and set "
                         "PREFECT_API_URL (`alignops up`, or your own)")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()  # running already where a flow is
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


@contextlib.contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Dask's INFO lines (every worker's start and stop) kept off the output: quiet by default."""
    __import__(logger)  # its loggers exist, each with the level its import gave it
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name == logger or name.startswith(logger + ".")]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
