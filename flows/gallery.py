"""Flow `build_gallery`: a dataset split embedded by a registry version, registered as a gallery version:
the embeddings and their FAISS index parameters, the ids and captions, the model version and embedding space
that made them, and the dataset version."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.data.reference import DatasetRef
from flows.steps.cluster import Cluster
from flows.steps.datasets import on_this_machine
from flows.steps.platform import Platform
from registry.records import LineageRecord, VersionRecord
from registry.registry import RegistryError
from serving.package import build_gallery as embed_gallery


@flow(name="build_gallery", log_prints=True)
def build_gallery(model_ref: str, dataset: DatasetRef, name: str, split: str = "test",
                  cluster: Cluster = Cluster()) -> VersionRecord:  # noqa: B008 - a default the UI form shows
    """Embed `dataset`'s `split` images with `model_ref` (on `cluster`) and register them as the next version
    of gallery `name`, in the model's embedding space."""
    dataset = on_this_machine(dataset)
    registry = Platform.from_env().registry()
    model = registry.resolve(model_ref)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        artifact = registry.download(model.name, model.version, Path(tmp) / "model")
        gallery = embed_gallery(cluster.model(artifact, model.ref), Path(dataset.path), split,
                                images_at=dataset.images or None, runner=cluster.runner(dataset.content_key()))
        gallery.save(Path(tmp) / "gallery")
        seconds = time.monotonic() - started
        record = registry.galleries().register(
            name, Path(tmp) / "gallery", space=model.embedding_space, reason=f"embedded by {model.ref}",
            lineage=LineageRecord(datasets={"gallery": dataset.recorded},
                                  dataset_hashes={"gallery": dataset.hash} if dataset.hash else {},
                                  parent_model=model.ref),
            tags={"split": split, "size": str(len(gallery.items)), "index": gallery.params.kind,
                  "embedding_seconds": f"{seconds:.1f}"})
    create_markdown_artifact(key="gallery", description=f"gallery {name}:{record.version}", markdown=(
        f"# Gallery `{name}:{record.version}`\n\n{len(gallery.items)} images of {dataset.recorded} ({split}), "
        f"embedded by `{model.ref}` in space `{model.embedding_space}` in {seconds:.1f} s; index "
        f"`{gallery.params.model_dump_json()}`."))
    return record


def pairing(model: VersionRecord, gallery: VersionRecord) -> str | None:
    """How `model`'s queries reach `gallery`: None when they live in one space, the projection file when the
    model carries one into the gallery's space; refused otherwise, so no bento pairs a query model with a
    gallery of another space unless a compatibility record allows it."""
    space = gallery.embedding_space
    if space == model.embedding_space:
        return None
    compatible = model.compatibility_with(space)
    if compatible is None or compatible.projection is None:
        raise RegistryError(
            f"{model.ref} (space {model.embedding_space}) cannot query gallery {gallery.ref}, embedded in space "
            f"{space}: re-embed it (`alignops gallery build {model.ref} DATASET --name {gallery.name}`) or train "
            f"the model compatible with {space} (`alignops train … --compatible-with {space}`)")
    return compatible.projection
