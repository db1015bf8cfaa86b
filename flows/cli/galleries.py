"""`alignops gallery …`: galleries as registry versions beside the models that embedded them."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.errors import user_errors
from flows.cli.models import JsonOption, emit_json, show_history

app = typer.Typer(help="Galleries: a dataset's images embedded by a model version, versioned in the registry.",
                  no_args_is_help=True)


def galleries():
    from flows.settings import Platform

    return Platform.from_env().registry().galleries()


@app.command("build")
@user_errors
def build(
    model: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME:VERSION of the model that embeds")],
    dataset: Annotated[str, typer.Argument(help="a dataset directory or PATH@REV")],
    name: Annotated[str, typer.Option(help="the gallery's name in the registry")],
    split: Annotated[str, typer.Option(help="the dataset's split to embed")] = "test",
) -> None:
    """Run the `build_gallery` flow: embed a dataset split with a model version and register it as the next
    version of gallery NAME (embeddings, ids, index parameters, the model and its embedding space, the data)."""
    from flows.cli.runs import dataset_at
    from flows.gallery import build_gallery
    from registry.names import check_name, parse_ref

    parse_ref(model), check_name(name, "gallery name")  # before a flow starts
    record = build_gallery(model, dataset_at(dataset), name, split)
    typer.echo(f"gallery {record.ref}: {record.tags['size']} images from {record.lineage.parent_model} in space "
               f"{record.embedding_space} ({record.tags['index']} index)")


@app.command("list")
@user_errors
def list_(name: Annotated[str | None, typer.Argument(help="one gallery; all when left out")] = None,
          as_json: JsonOption = False) -> None:
    """Gallery versions: size, the model that embedded them, their embedding space and aliases."""
    from flows.report import console, rich_table

    store = galleries()
    found = store.search(name)
    if as_json:
        return emit_json([r.model_dump() | {"aliases": store.aliases_of(r)} for r in found])
    console.print(rich_table("galleries", ["gallery", "version", "images", "embedded by", "space", "dataset",
                                           "aliases"], [
        (r.name, r.version, r.tags.get("size", "-"), r.lineage.parent_model, r.embedding_space,
         r.lineage.datasets.get("gallery", "-"), ", ".join(store.aliases_of(r))) for r in found]))


@app.command("promote")
@user_errors
def promote(name: str, version: int, alias: str = "production", reason: str = "") -> None:
    """Move a gallery alias to VERSION (recorded in the gallery's audit log)."""
    from registry.names import check_name

    check_name(name, "gallery name"), check_name(alias, "alias")
    store = galleries()
    previous = store.get_alias(name, alias)
    store.set_alias(name, alias, version, reason=reason)
    typer.echo(f"gallery {name}@{alias}: {previous.version if previous else '-'} -> {version}")


@app.command("history")
@user_errors
def history(name: str, as_json: JsonOption = False) -> None:
    """A gallery's audit log: every version registered and alias moved."""
    show_history(galleries().events(name), f"history of gallery {name}", as_json)
