"""`alignops gallery …`: galleries as registry versions beside the models that embedded them."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.cli.registry import JsonOption, emit_json, refused_records, show_history
from flows.cli.runs import ClusterAddress, PartitionSize, WorkerBatch
from flows.cli.store import registry
from flows.steps.output import echo

app = typer.Typer(help="Galleries: a dataset's images embedded by a model version, versioned in the registry.",
                  no_args_is_help=True)


def galleries():
    return registry().galleries()


@app.command("build")
@user_errors
def build(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION of the model that embeds")],
    dataset: Annotated[str, typer.Argument(help="a dataset directory, PATH@REV, or s3://bucket/prefix (its images "
                                                "are read from there)")],
    name: Annotated[str, typer.Option(help="the gallery's name in the registry")],
    split: Annotated[str, typer.Option(help="the dataset's split to embed")] = "test",
    cluster: ClusterAddress = None,
    partition_size: PartitionSize = 1024,
    worker_batch: WorkerBatch = 64,
) -> None:
    """Run the `build_gallery` flow: embed a dataset split with a model version and register it as the next
    version of gallery NAME (embeddings, ids, index parameters, the model and its embedding space, the data)."""
    from flows.cli.runs import cluster_named, dataset_at

    where = cluster_named(cluster, partition_size, worker_batch)  # before the heavy imports
    from flows.gallery import build_gallery
    from registry.names import check_name, parse_ref

    parse_ref(model), check_name(name, "gallery name")  # before a flow starts
    record = build_gallery(model, dataset_at(dataset, remote_ok=True), name, split, where)
    echo(f"gallery {record.ref}: {record.tags['size']} images from {record.lineage.parent_model} in space "
               f"{record.embedding_space} ({record.tags['index']} index)")


@app.command("list")
@user_errors
def list_(name: Annotated[str | None, typer.Argument(help="one gallery; all when left out")] = None,
          as_json: JsonOption = False) -> None:
    """Gallery versions: size, the model that embedded them, their embedding space and aliases."""
    from flows.steps.output import console, rich_table

    store = galleries()
    search = store.search(name)
    found = search.records
    if as_json:
        emit_json([r.model_dump() | {"aliases": store.aliases_of(r)} for r in found])
    else:
        console.print(rich_table("galleries", ["gallery", "version", "images", "embedded by", "space", "dataset",
                                               "aliases"], [
            (r.name, r.version, r.tags.get("size", "-"), r.lineage.parent_model, r.embedding_space,
             r.lineage.datasets.get("gallery", "-"), held_by(store, r)) for r in found]))
    refused_records(search.refused)


def held_by(store, record) -> str:
    """Its aliases, each with the query model it is paired with."""
    aliases = store.aliases(record.name)
    return ", ".join(a + (f" (with {aliases[a].paired_model})" if aliases[a].paired_model else "")
                     for a in store.aliases_of(record))


@app.command("promote")
@user_errors
def promote(name: str, version: int, alias: str = "production", reason: str = "") -> None:
    """Move a gallery alias to VERSION (recorded in the gallery's audit log)."""
    from registry.names import check_name

    check_name(name, "gallery name"), check_name(alias, "alias")
    store = galleries()
    previous = store.get_alias(name, alias)
    store.set_alias(name, alias, version, reason=reason)
    echo(f"gallery {name}@{alias}: {previous.version if previous else '-'} -> {version}")


@app.command("upgrade")
@user_errors
def upgrade(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION of the new query model")],
    gallery: Annotated[str, typer.Option(help="the gallery whose serving pair it takes over")],
    alias: Annotated[str, typer.Option(help="the alias of the gallery and of the model that move together")] =
    "production",
    dataset: Annotated[str | None, typer.Option(help="the gallery's data, a directory or PATH@REV (default: "
                                                     "the version it was embedded from)")] = None,
    k: Annotated[int, typer.Option(help="answers compared per probe (overlap@k, recall@k)")] = 10,
    probes: Annotated[int, typer.Option(help="probe captions drawn from the gallery's split")] = 1000,
    tolerance: Annotated[float, typer.Option(help="how far probe recall@k may fall")] = 0.02,
    reembed: Annotated[bool, typer.Option(help="re-embed the gallery when the model can already query it")] =
    True,
    reason: str = "",
    force: Annotated[str | None, typer.Option(help="switch despite a failed gate or probe check: the reason, "
                                                   "recorded")] = None,
    cluster: ClusterAddress = None,
    partition_size: PartitionSize = 1024,
    worker_batch: WorkerBatch = 64,
) -> None:
    """Run the `upgrade` flow: MODEL becomes the query model of gallery NAME@ALIAS, and takes ALIAS. A model
    that can query the gallery's space serves it at once while the gallery is re-embedded; any other gets a
    new gallery built in the shadow, compared on probe captions, then model and gallery switch together."""
    from flows.cli.runs import cluster_named, dataset_at

    where = cluster_named(cluster, partition_size, worker_batch)  # before the heavy imports
    from flows.upgrade import serving_pair
    from flows.upgrade import upgrade as run_upgrade
    from registry.names import check_name, parse_ref

    parse_ref(model), check_name(gallery, "gallery name"), check_name(alias, "alias")  # before a flow starts
    if dataset is None:
        _, current, _ = serving_pair(galleries(), gallery, alias)
        dataset = current.lineage.datasets.get("gallery", "")
        if "@" not in dataset:
            raise typer.BadParameter(f"gallery {current.ref} was embedded from {dataset or 'unrecorded data'}, "
                                     "which is no version: name its data with --dataset DIR", param_hint="--dataset")
    result = run_upgrade(model, gallery, dataset_at(dataset), alias, k=k, probes=probes, tolerance=tolerance,
                         reembed=reembed, reason=reason, force_reason=force, cluster=where)
    echo(f"{gallery}@{alias} ({result.mode}): {result.before} -> {result.after}")
    if result.served_comparison:
        echo(f"served at once: {result.served_at_once} ({result.served_comparison.summary()})")
    if result.comparison:
        echo(f"re-embedded gallery: {result.comparison.summary()}")
    if result.shadow:
        echo(f"in the shadow: {result.shadow_reason}")


@app.command("rollback")
@user_errors
def rollback(name: str, alias: str = "production", reason: str = "") -> None:
    """Run the `rollback_upgrade` flow: the gallery's pair back to its previous holder, and the model's alias
    back to that pair's model."""
    from flows.upgrade import rollback_upgrade
    from registry.names import check_name

    check_name(name, "gallery name"), check_name(alias, "alias")
    echo(f"{name}@{alias}: {rollback_upgrade(name, alias, reason)}")


@app.command("history")
@user_errors
def history(name: str, as_json: JsonOption = False) -> None:
    """A gallery's audit log: every version registered and alias moved."""
    show_history(galleries().events(name), f"history of gallery {name}", as_json)
