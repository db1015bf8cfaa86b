"""Data work on a real Dask cluster (worker processes on 127.0.0.1): the scan, fingerprints, curation and gallery
embeddings equal the in-process results; workers read a dataset on moto's S3; a worker killed mid-run loses and
duplicates nothing; a re-run skips the partitions already done. Every cluster is stopped by the test that
started it, its worker processes checked gone."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from cli_invoke import invoke

from components.config import ValidationConfig
from components.curation.curate import curate_dataset, write_curated
from components.curation.rules import CurationRules
from components.curation.works import ImageWork
from components.data.location import ImageRoot
from components.data.manifest import read_manifest
from components.models.directory import ModelDirectory
from components.partitions.plan import IN_PROCESS, PartStore, plan, run_partition
from components.validation.image_scan import ScanWork
from components.validation.validate import validate_dataset
from flows.steps.cluster import Cluster
from infra.workspace import directory_md5
from serving.package import build_gallery

pytestmark = pytest.mark.slow
SIZE = 48  # inputs per partition: the tiny dataset's 196 images make 5, its 980 captions 21


@pytest.fixture(scope="module")
def dask_cluster(prefect_harness):
    """Two worker processes, one thread each, on 127.0.0.1; closed at the end, its processes checked gone."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster, set_as_default=False)  # prefect-dask would take a default client's cluster for its own
    pids = list(client.run(os.getpid).values())
    yield cluster.scheduler_address, client
    client.close()
    cluster.close()
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def running_children() -> set[int]:
    """This process's live descendants, but multiprocessing's resource tracker, which lives as long as we do."""
    alive = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                alive.add(child.pid)
    return alive


def on(address: str) -> Cluster:
    return Cluster(address=address, partition_size=SIZE, batch_size=8)


def test_scan_fingerprints_curation_and_gallery_on_a_cluster_equal_the_in_process_results(
        dask_cluster, tiny_dataset, tiny_artifact, tmp_path):
    address, _ = dask_cluster
    runner, model = on(address).runner("tiny"), ModelDirectory(path=str(tiny_artifact))

    here = validate_dataset(tiny_dataset, ValidationConfig(), tmp_path / "here")
    there = validate_dataset(tiny_dataset, ValidationConfig(), tmp_path / "there", runner=runner)
    assert there.model_copy(update={"data_docs": None}) == here.model_copy(update={"data_docs": None})
    assert here.image_facts.images == 196 and there.data_docs
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "there" / "images.parquet"),
                                  pd.read_parquet(tmp_path / "here" / "images.parquet"))

    images = read_manifest(tiny_dataset).drop_duplicates("image_id")["image"].tolist()
    work = ImageWork(root=ImageRoot(root=str(tiny_dataset)), model=model)
    local, spread = IN_PROCESS.map(work, images), runner.map(work, images)
    assert np.array_equal(spread.sha256, local.sha256) and np.array_equal(spread.hashes, local.hashes)
    np.testing.assert_allclose(spread.embeddings, local.embeddings, atol=1e-6, rtol=0)

    rules = CurationRules(keep_fraction=0.7, dedup=True)
    curated_here = curate_dataset(tiny_dataset, model, rules)
    curated_there = curate_dataset(tiny_dataset, model, rules, runner=runner)
    pd.testing.assert_frame_equal(curated_there.rows, curated_here.rows, atol=1e-6)
    assert curated_there.counts == curated_here.counts and curated_here.counts["low_score"] > 0
    assert (directory_md5(write_curated(tiny_dataset, curated_there, tmp_path / "c2").parent)
            == directory_md5(write_curated(tiny_dataset, curated_here, tmp_path / "c1").parent))

    gallery_here = build_gallery(model, tiny_dataset, "test")
    gallery_there = build_gallery(model, tiny_dataset, "test", runner=runner)
    assert gallery_there.items == gallery_here.items
    np.testing.assert_allclose(gallery_there.embeddings, gallery_here.embeddings, atol=1e-6, rtol=0)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(dask_cluster, tiny_dataset, tiny_artifact, tmp_path,
                                                              monkeypatch):
    address, client = dask_cluster
    monkeypatch.setenv("ALIGNOPS_PARTS", str(tmp_path / "parts"))
    images = read_manifest(tiny_dataset).drop_duplicates("image_id")["image"].tolist()
    work = ImageWork(root=ImageRoot(root=str(tiny_dataset)), model=ModelDirectory(path=str(tiny_artifact)))
    victim = next(iter(client.run(os.getpid).values()))

    def kill_when_a_part_lands():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((tmp_path / "parts").rglob("*.safetensors")):
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_a_part_lands)
    killer.start()
    spread = Cluster(address=address, partition_size=8, batch_size=8).runner("tiny").map(work, images)
    killer.join()
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    local = IN_PROCESS.map(work, images)
    assert len(spread.sha256) == len(images)  # every image once: none lost, none twice
    assert np.array_equal(spread.sha256, local.sha256) and np.array_equal(spread.hashes, local.hashes)
    np.testing.assert_allclose(spread.embeddings, local.embeddings, atol=1e-6, rtol=0)
    assert not list((tmp_path / "parts").rglob("*.safetensors"))  # the parts, combined, are cleared


def test_a_rerun_skips_the_partitions_already_done(dask_cluster, tiny_dataset, tmp_path, monkeypatch, capsys):
    """Parts left by an interrupted run are taken as they are: two are planted with a mark no scan would write,
    and the combined scan carries it in their rows while every other row is scanned anew."""
    address, _ = dask_cluster
    monkeypatch.setenv("ALIGNOPS_PARTS", str(tmp_path / "parts"))
    cluster = on(address)
    images = sorted(read_manifest(tiny_dataset)["image"].unique().tolist())
    from flows.steps.cluster import DaskPartitions

    work = ScanWork(root=ImageRoot(root=str(tiny_dataset)), config=ValidationConfig())
    partitions = plan(images, SIZE, work.identity())
    folder = DaskPartitions(cluster, "tiny").folder(work)
    for done in (partitions[1], partitions[4]):
        run_partition(work, done, folder)
        store = PartStore(folder, work)
        marked = store.read(done).assign(mode="MARK")
        store.write(done, marked)

    scanned = cluster.runner("tiny").map(work, images)
    assert "(2 done by an earlier run)" in capsys.readouterr().err
    assert list(scanned["image"]) == images
    marked = set(partitions[1].items) | set(partitions[4].items)
    assert set(scanned.loc[scanned["mode"] == "MARK", "image"]) == marked
    assert (scanned.loc[~scanned["image"].isin(marked), "mode"] == "RGB").all()


def test_workers_read_a_dataset_on_s3_through_the_cli(moto_s3, s3_bucket, tiny_dataset, prefect_harness, tmp_path,
                                                      caplog):
    """`data validate s3://…` on a Dask cluster started for the command: the manifest alone is fetched here,
    the workers read the images from S3, and the report equals the local directory's."""
    import boto3

    s3 = boto3.client("s3")
    for path in sorted(p for p in Path(tiny_dataset).rglob("*") if p.is_file()):
        s3.upload_file(str(path), s3_bucket, f"tiny/{path.relative_to(tiny_dataset)}")
    local = invoke("data", "validate", str(tiny_dataset), "--json", str(tmp_path / "local.json"))
    before = running_children()
    remote = invoke("data", "validate", f"s3://{s3_bucket}/tiny", "--cluster", "local:2", "--partition-size", "64",
                    "--json", str(tmp_path / "remote.json"))
    assert remote.exit_code == local.exit_code == 0, remote.output
    progress = caplog.text  # the flow logs its prints: the lines a person reads on stderr, in the run's log too
    assert "[scan] 196 inputs in 4 partitions on local:2" in progress and "[scan] partition 4/4" in progress
    import json

    here, there = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("local", "remote"))
    assert there["dataset"] != here["dataset"]
    assert {**there, "dataset": "", "data_docs": ""} == {**here, "dataset": "", "data_docs": ""}
    assert running_children() - before == set()  # the command's cluster: scheduler and workers stopped
    assert partition_runs("validate_data") == {f"scan-{i}": "COMPLETED" for i in range(4)}


def partition_runs(flow: str) -> dict[str, str]:
    """The partition task runs of `flow`'s latest run, as Prefect's API (and so its UI) holds them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        latest = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
                                       sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[latest.id])))
    return {task.name: task.state.type.value for task in tasks if task.name.split("-")[0] == "scan"}


def test_embedding_partitions_go_to_the_workers_that_declare_a_gpu(prefect_harness, tiny_dataset, tiny_artifact):
    """Of two workers, one declares `GPU=1`: every embedding partition runs there (a model's partitions ask for
    the resource), while a scan, which asks for none, may run on either."""
    from distributed import Client, Nanny, SpecCluster
    from distributed.scheduler import Scheduler

    from flows.steps.cluster import workers_have_gpu

    options = {"nthreads": 1, "host": "127.0.0.1"}
    workers = {"gpu": {"cls": Nanny, "options": options | {"resources": {"GPU": 1}}},
               "cpu": {"cls": Nanny, "options": options}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, \
            Client(cluster, set_as_default=False) as client:
        assert workers_have_gpu(client)
        images = read_manifest(tiny_dataset).drop_duplicates("image_id")["image"].tolist()
        work = ImageWork(root=ImageRoot(root=str(tiny_dataset)), model=ModelDirectory(path=str(tiny_artifact)))
        on(cluster.scheduler_address).runner("tiny").map(work, images)
        executed = client.run(lambda dask_worker: (dask_worker.name, dask_worker.state.executed_count))
        counts = dict(executed.values())
        assert counts == {"gpu": len(plan(images, SIZE, work.identity())), "cpu": 0}


def test_a_worker_that_cannot_read_the_flows_folder_fetches_the_version_from_the_registry(
        dask_cluster, tiny_dataset, tiny_artifact, tmp_path):
    """On a remote cluster the flow's download is on another disk: each worker fetches the registry version
    itself (verified), once, and embeds the same as this process does with the flow's copy."""
    from flows.steps.cluster import RegistryModel
    from flows.steps.platform import Platform

    address, client = dask_cluster
    record = Platform.from_env().registry().register("scale-out", tiny_artifact, reason="test")
    model = on(address).model(tmp_path / "only-on-the-flows-disk", record.ref)
    assert isinstance(model, RegistryModel)
    images = read_manifest(tiny_dataset).drop_duplicates("image_id")["image"].tolist()[:40]
    work = ImageWork(root=ImageRoot(root=str(tiny_dataset)), model=model, perceptual=False)
    spread = on(address).runner("tiny").map(work, images)
    local = IN_PROCESS.map(work.model_copy(update={"model": ModelDirectory(path=str(tiny_artifact))}), images)
    np.testing.assert_allclose(spread.embeddings, local.embeddings, atol=1e-6, rtol=0)
    fetched = Platform.from_env().home / "worker-models" / f"scale-out-{record.version}"
    assert (fetched / "version.sig").is_file()  # a verified download, as `registry download` delivers it


def test_shards_written_on_a_cluster_are_the_bytes_written_here(dask_cluster, tiny_dataset, tmp_path):
    """One shard a partition, each written whole by a worker into the output folder: the same files, byte for
    byte, as in this process; a shard's partition that runs again (a lost worker's) writes the same bytes."""
    from components.data.shards import write_shards

    address, _ = dask_cluster
    here = write_shards(tiny_dataset, tmp_path / "here", samples_per_shard=40)
    one_shard_each = Cluster(address=address, partition_size=40).runner("tiny")
    there = write_shards(tiny_dataset, tmp_path / "there", samples_per_shard=40, runner=one_shard_each)
    assert [p.name for p in there] == [p.name for p in here] and len(here) == 6  # train 4, val 1, test 1
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(here, there, strict=True))
    assert sorted(p.name for p in (tmp_path / "there").iterdir()) == [p.name for p in there]  # no leftovers
