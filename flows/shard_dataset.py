"""Flow `shard_dataset`: a dataset written as WebDataset tar shards for streaming training at scale, one shard a
partition on `cluster` (each written whole by a worker into `out`, which every worker must reach)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.data.reference import DatasetRef
from components.data.shards import write_shards
from flows.steps.cluster import Cluster
from flows.steps.datasets import on_this_machine


@flow(name="shard_dataset", log_prints=True)
def shard_dataset(dataset: DatasetRef, out: str, samples_per_shard: int = 1000, resize: int | None = None,
                  cluster: Cluster = Cluster()) -> list[str]:  # noqa: B008 - a default the UI form shows
    """Every split of `dataset` as `<split>-<n>.tar` shards of `samples_per_shard` images in `out` (images
    shrunk to a short side of `resize` where given); the same data gives the same bytes."""
    dataset = on_this_machine(dataset)
    one_shard_each = cluster.model_copy(update={"partition_size": samples_per_shard})
    shards = write_shards(Path(dataset.path), Path(out), samples_per_shard, resize,
                          runner=one_shard_each.runner(dataset.content_key()))
    create_markdown_artifact(key="shards", description=f"shards of {dataset.recorded}", markdown=(
        f"# Shards of `{dataset.recorded}`\n\n{len(shards)} shards of up to {samples_per_shard} images in `{out}`"
        + (f", resized to a short side of {resize} px" if resize else "") + "."))
    return [str(path) for path in shards]
