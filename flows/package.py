"""Flow `package`: a bento built from a registry version, smoke-tested, and its tag recorded."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from components.data.reference import DatasetRef
from components.evaluation.gallery import Gallery
from components.models.directory import ModelDirectory
from flows.gallery import pairing
from flows.steps.datasets import on_this_machine
from flows.steps.platform import Platform
from flows.steps.stages import stage
from registry.names import parse_ref
from registry.records import Event, VersionRecord
from registry.registry import RegistryError
from registry.signing import TrustedKeys
from serving.options import ServingOptions
from serving.package import build_bento, build_gallery, import_model
from serving.provenance import Provenance
from serving.smoke import SmokeResult, smoke_test


@task(cache_policy=NO_CACHE)
def build(record: VersionRecord, artifact_dir: str, gallery_dataset: DatasetRef | None, gallery_split: str,
          serving: ServingOptions, *, provenance: Provenance, trusted: TrustedKeys,
          registered: RegisteredGallery | None = None) -> str:
    labels = {"registry-model": record.name, "registry-version": str(record.version),
              **{f"dataset-{role}": ref for role, ref in record.lineage.datasets.items()}}
    gallery, query_space = None, None
    if gallery_dataset is not None:
        gallery = build_gallery(ModelDirectory(path=artifact_dir, ref=record.ref), Path(gallery_dataset.path),
                                gallery_split)
        labels["gallery"] = f"{gallery_dataset.recorded}/{gallery_split} ({len(gallery.items)} images)"
    elif registered is not None:
        gallery, query_space = Gallery.load(Path(registered.directory)), registered.query_space
        labels["gallery"] = f"{registered.ref} ({len(gallery.items)} images, space {registered.space})"
    labels["runtime"] = serving.runtime
    model_tag = import_model(Path(artifact_dir), f"alignops-{record.name}", labels, provenance=provenance,
                             trusted=trusted, gallery=gallery, query_space=query_space, runtime=serving.runtime)
    return build_bento(model_tag, labels, serving)


class RegisteredGallery(BaseModel):
    """A gallery version downloaded for a bento, and the space its queries must be projected into (or none)."""

    ref: str
    space: str
    directory: str
    query_space: str | None


def registered_gallery(registry, model: VersionRecord, gallery_ref: str, download_to: Path) -> RegisteredGallery:
    """`gallery_ref` resolved once, its pairing with `model` checked (refused where the alias pairs the
    gallery with another model, and unless they share a space or the model carries a projection into the
    gallery's), then downloaded with every checksum verified."""
    galleries = registry.galleries()
    ref = parse_ref(gallery_ref)
    held = galleries.get_alias(ref.name, ref.alias) if ref.alias else None  # read once: the pair moves as one
    gallery = galleries.get_version(ref.name, held.version) if held else galleries.resolve(gallery_ref)
    if held and held.paired_model and held.paired_model != model.ref:
        raise RegistryError(f"gallery {gallery_ref} serves with {held.paired_model}, not {model.ref}: package "
                            f"that model with it, or name a gallery version ({gallery.ref})")
    projection = pairing(model, gallery)
    directory = galleries.download(gallery.name, gallery.version, download_to)
    return RegisteredGallery(ref=gallery.ref, space=gallery.embedding_space, directory=str(directory),
                             query_space=gallery.embedding_space if projection else None)


@task
def smoke(bento_tag: str, artifact_dir: str, gallery: bool) -> SmokeResult:
    return smoke_test(bento_tag, Path(artifact_dir), gallery)


@flow(name="package", log_prints=True)
def package(model_ref: str, gallery_dataset: DatasetRef | None = None, gallery_split: str = "test",
            serving: ServingOptions | None = None, gallery: str | None = None) -> tuple[str, SmokeResult]:
    """Build a bento for `model_ref` (`name@alias` or `name:version`) from the registry's verified bytes,
    with a search gallery: `gallery_dataset`'s `gallery_split` images embedded now, or the registered gallery
    `gallery` (`name@alias`, `name:version`) where the model can query its embedding space; serving with
    `serving`'s batching and input limits."""
    if gallery_dataset is not None and gallery is not None:
        raise ValueError("give a gallery dataset to embed or a registered gallery, not both")
    serving, gallery_dataset = serving or ServingOptions(), on_this_machine(gallery_dataset)
    registry = Platform.from_env().registry()
    record = registry.resolve(model_ref)
    with tempfile.TemporaryDirectory() as tmp:
        registered = registered_gallery(registry, record, gallery, Path(tmp) / "gallery") if gallery else None
        artifact_dir = str(registry.download(record.name, record.version, Path(tmp) / "artifact"))
        with stage("build the bento"):
            provenance = Provenance(ref=record.ref, signature_required=registry.trust.policy.requires_signature(
                registry.aliases_of(record)))
            bento_tag = build(record, artifact_dir, gallery_dataset, gallery_split, serving, provenance=provenance,
                              trusted=registry.trust.trusted, registered=registered)
        with stage("serve it and answer a search"):
            result = smoke(bento_tag, artifact_dir, gallery_dataset is not None or registered is not None)
    registry.record_event(Event(event="packaged", model=record.name, version=record.version,
                                details={"bento": bento_tag, "smoke_passed": result.passed}))
    create_markdown_artifact(key="bento", description=f"{record.name}:{record.version} packaged", markdown=(
        f"# Bento `{bento_tag}`\n\nFrom `{record.name}:{record.version}`. Smoke test on {result.url}: "
        f"{'passed' if result.passed else 'FAILED'} (max abs diff text {result.text_max_abs_diff:.2e}, "
        f"image {result.image_max_abs_diff:.2e}; classify and search answered; ready in {result.startup_s:.1f} s)."
        f"\n\n"
        f"Serve it: `alignops serve {bento_tag}`"))
    if not result.passed:
        raise RuntimeError(f"smoke test of {bento_tag} failed: {result}")
    return bento_tag, result
