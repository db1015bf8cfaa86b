"""Flows `upgrade` and `rollback_upgrade`: a new model version takes over a gallery's serving pair.

A gallery's alias names the pair a bento serves, (gallery version, query model version), and moves as one
compare-and-swap, so no reader ever sees a gallery with a model that cannot query its space.

- The model can query the gallery's space (it shares it, or carries a projection into it): that pair (this
  gallery, new model) is measured on probe captions as a bento would serve it, moves at once where it holds,
  and the gallery is re-embedded by the new model behind it; the re-embedded gallery takes over only where it
  holds against the pair being served, and otherwise stays in the shadow (the upgrade itself succeeded).
- It cannot: the new gallery is built in the shadow, old and new answers are compared on probe captions,
  and only then does the pair move.

Either way the model's own alias follows the pair (never before it, so that a concurrent promotion's gallery
check sees the pair it must keep searchable), and a refused promotion puts the pair back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from components.compat.probes import ProbeComparison, Probes, compare_answers
from components.compat.projection import Projection
from components.data.reference import DatasetRef
from components.evaluation.gallery import Gallery
from components.models.embedder import Embedder
from flows.gallery import build_gallery, pairing
from flows.promote import policy_for, promotion_check
from flows.steps.candidate import announce_alias_move
from flows.steps.cluster import Cluster
from flows.steps.datasets import on_this_machine
from flows.steps.platform import Platform
from registry.names import parse_ref
from registry.records import AliasRecord, VersionRecord
from registry.registry import Registry, RegistryError

REEMBED_DEPLOYMENT = "reembed_gallery/reembed-gallery"


class Pair(BaseModel):
    gallery: str  # name:version
    model: str  # name:version

    def __str__(self) -> str:
        return f"{self.gallery} with {self.model}"


class Upgrade(BaseModel):
    mode: Literal["compatible", "re-indexed"]
    before: Pair
    served_at_once: Pair | None  # compatible: the old gallery with the new model, while it is re-embedded
    served_comparison: ProbeComparison | None = None  # compatible: that pair measured against `before`
    after: Pair  # what is served now
    comparison: ProbeComparison | None  # the re-embedded gallery against what it would replace; None: no re-embed
    shadow: str | None = None  # a re-embedded gallery left in the shadow (it did not hold), and why
    shadow_reason: str | None = None
    reembedding: str | None = None  # the flow run re-embedding the gallery in the background (deployment)


class Reembedded(BaseModel):
    """A compatible upgrade's re-embedded gallery, and whether it took the pair over."""

    gallery: str  # the new gallery version
    comparison: ProbeComparison  # its answers against the pair being served
    serving: Pair  # what is served after it
    shadow_reason: str | None = None  # why it stays in the shadow, where it did not take over


def serving_pair(galleries: Registry, name: str, alias: str) -> tuple[AliasRecord, VersionRecord, str]:
    """What a gallery alias serves: its record, the gallery version and the query model (the pair's, else the
    model that embedded it)."""
    held = galleries.get_alias(name, alias)
    if held is None:
        raise RegistryError(f"gallery {name}@{alias} holds no version: build one (`alignops gallery build MODEL "
                            f"DATASET --name {name}`) and promote it (`alignops gallery promote {name} N`)")
    gallery = galleries.get_version(name, held.version)
    return held, gallery, held.paired_model or gallery.lineage.parent_model


def answers(registry: Registry, model: VersionRecord, gallery: VersionRecord, probes: Probes, *, k: int,
            workdir: Path) -> list[list[str]]:
    """The image ids `model`'s queries find in `gallery`, best first, the way a bento of the pair answers
    (through the model's projection where the gallery lives in an older space)."""
    projection = pairing(model, gallery)
    artifact = registry.download(model.name, model.version, workdir / f"model-{model.name}-{model.version}")
    queries = Embedder.load(artifact).encode_texts(probes.captions)
    if projection is not None:
        queries = Projection.load(artifact, gallery.embedding_space).apply(queries)
    folder = workdir / f"gallery-{gallery.name}-{gallery.version}"
    index = Gallery.load(registry.galleries().download(gallery.name, gallery.version, folder))
    return [[str(index.items[i]["image_id"]) for i, _ in row] for row in index.search(queries, k)]


def compare(registry: Registry, before: tuple[VersionRecord, VersionRecord], after: tuple[VersionRecord, VersionRecord],
            probes: Probes, k: int) -> ProbeComparison:
    """Old pair vs new pair, (model, gallery) each, on the same probes."""
    with tempfile.TemporaryDirectory() as tmp:
        old = answers(registry, *before, probes, k=k, workdir=Path(tmp))
        new = answers(registry, *after, probes, k=k, workdir=Path(tmp))
    return compare_answers(old, new, probes.image_ids, k)


def switch(registry: Registry, gallery: VersionRecord, model: VersionRecord, alias: str, *,
           expected: tuple[int, str | None], reason: str, force_reason: str | None) -> AliasRecord:
    """Move the gallery's pair, then the model's alias (checked as `promote` checks it); a refused promotion
    moves the pair back, unless another writer has moved it since. Returns the model's alias record."""
    galleries = registry.galleries()
    galleries.pair(gallery.name, alias, gallery.version, model.ref, reason=reason, expected=expected)
    check = promotion_check(registry, alias, policy_for(model, None).policy)
    try:
        moved = registry.promote(model.name, model.version, alias, reason=reason, force_reason=force_reason,
                                 check=check)
    except RegistryError:
        galleries.pair(gallery.name, alias, *expected, reason=f"{model.ref} was refused {alias!r}",
                       expected=(gallery.version, model.ref))
        raise
    return moved


def announced(registry: Registry, gallery: VersionRecord, model: VersionRecord, moved: AliasRecord) -> Pair:
    """The model's alias move announced as `promote` announces it (bentos of the pair are built by `package
    --gallery-from`, so the package automation is not asked to)."""
    announce_alias_move(registry, model, moved.alias, moved.history[-1] if moved.history else None,
                        package_on_move=False, gallery=gallery.ref)
    return Pair(gallery=gallery.ref, model=model.ref)


@flow(name="upgrade", log_prints=True)
def upgrade(model_ref: str, gallery: str, dataset: DatasetRef, alias: str = "production", *, k: int = 10,
            probes: int = 1000, tolerance: float = 0.02, reembed: bool = True, reason: str = "",
            force_reason: str | None = None, background: bool = False,
            cluster: Cluster = Cluster()) -> Upgrade:  # noqa: B008 - a default the UI form shows
    """Make `model_ref` the query model of gallery `gallery`@`alias` and move the model's `alias` with it.
    `dataset` is the gallery's data (re-embedded by the new model, on `cluster`). The new gallery takes over
    only where the probes' recall@k does not fall by more than `tolerance` (unless `force_reason`, recorded).
    With `background` (as the deployment runs it), a compatible model's re-embedding is a run of the
    `reembed-gallery` deployment of its own, and this run ends once the model serves over the old gallery."""
    dataset = on_this_machine(dataset)
    registry = Platform.from_env().registry()
    galleries = registry.galleries()
    model = registry.resolve(model_ref)
    if not model.gate_passed and not force_reason:
        raise RegistryError(f"{model.ref} has no passing gate verdict, so it cannot take {alias!r}: evaluate it "
                            "(`alignops evaluate`) or pass --force REASON")
    held, current, current_model_ref = serving_pair(galleries, gallery, alias)
    current_model = registry.resolve(current_model_ref)
    before = Pair(gallery=current.ref, model=current_model.ref)
    split, reason = current.tags.get("split", "test"), reason or f"upgrade of gallery {gallery} to {model.ref}"
    expected = (held.version, held.paired_model)
    probe_set = Probes.of_split(Path(dataset.path), split, limit=probes)

    if model.can_query(current.embedding_space):
        reembedding = ({"dataset": dataset, "alias": alias, "k": k, "probes": probes, "tolerance": tolerance,
                        "force_reason": force_reason, "cluster": cluster} if reembed else None)
        return compatible_upgrade(registry, model, (current_model, current), probe_set, alias, expected=expected,
                                  k=k, tolerance=tolerance, reason=reason, force_reason=force_reason,
                                  reembedding=reembedding, background=background)
    shadow = build_gallery(model.ref, dataset, gallery, split, cluster)
    comparison = compare(registry, (current_model, current), (model, shadow), probe_set, k)
    print(comparison.summary())
    if comparison.regressed(tolerance) and not force_reason:
        raise RegistryError(f"gallery {shadow.ref} with {model.ref} finds fewer probes than {before} "
                            f"({comparison.summary()}): it stays in the shadow; pass --force REASON to switch")
    after = announced(registry, shadow, model, switch(
        registry, shadow, model, alias, expected=expected, reason=reason, force_reason=force_reason))
    return report(Upgrade(mode="re-indexed", before=before, served_at_once=None, after=after, comparison=comparison))


def compatible_upgrade(registry: Registry, model: VersionRecord, serving: tuple[VersionRecord, VersionRecord],
                       probe_set: Probes, alias: str, *, expected: tuple[int, str | None], k: int, tolerance: float,
                       reason: str, force_reason: str | None, reembedding: dict | None, background: bool) -> Upgrade:
    """The new model over the gallery it can already query: measured as served (through its projection where
    it has one), switched where it holds; then the gallery re-embedded by it (`reembed_gallery`, here or in
    the background), which takes over only where it holds against that pair. A re-embed that does not hold
    stays in the shadow: what is served changed as intended, so the upgrade still succeeds, and says so."""
    current_model, current = serving
    before = Pair(gallery=current.ref, model=current_model.ref)
    served = compare(registry, serving, (model, current), probe_set, k)
    print(f"{model.ref} over {current.ref}, as served: {served.summary()}")
    if served.regressed(tolerance) and not force_reason:
        raise RegistryError(f"{model.ref} over gallery {current.ref} finds fewer probes than {before} "
                            f"({served.summary()}): nothing moved; pass --force REASON to serve it anyway")
    now = announced(registry, current, model, switch(
        registry, current, model, alias, expected=expected, reason=reason, force_reason=force_reason))
    print(f"serving {now} ({served.summary()})")
    result = Upgrade(mode="compatible", before=before, served_at_once=now, served_comparison=served, after=now,
                     comparison=None)
    if reembedding is None:
        return report(result)
    parameters = {"model_ref": model.ref, "gallery": current.ref, **reembedding}
    if background:
        from prefect.deployments import run_deployment

        run = run_deployment(REEMBED_DEPLOYMENT, parameters=parameters, timeout=0, as_subflow=False)
        result.reembedding = str(run.id)
        print(f"re-embedding {current.ref} with {model.ref} in the background: flow run {run.name} ({run.id})")
        return report(result)
    done = reembed_gallery(**parameters)
    result.comparison, result.after = done.comparison, done.serving
    if done.shadow_reason:
        result.shadow, result.shadow_reason = done.gallery, done.shadow_reason
    return report(result)


@flow(name="reembed_gallery", log_prints=True)
def reembed_gallery(model_ref: str, gallery: str, dataset: DatasetRef, alias: str = "production", *, k: int = 10,
                    probes: int = 1000, tolerance: float = 0.02, force_reason: str | None = None,
                    cluster: Cluster = Cluster()) -> Reembedded:  # noqa: B008 - a default the UI form shows
    """Re-embed gallery version `gallery` (NAME:VERSION, served with `model_ref`) by that model, on `cluster`.
    The new version takes the pair `gallery`@`alias` over only where its probes' recall@k holds within
    `tolerance` against the pair being served (unless `force_reason`), and only while that pair is still
    (`gallery`, `model_ref`): a pair that moved meanwhile is left as it is."""
    dataset = on_this_machine(dataset)
    registry = Platform.from_env().registry()
    model, galleries = registry.resolve(model_ref), registry.galleries()
    named = parse_ref(gallery)
    current = galleries.get_version(named.name, named.version)
    split = current.tags.get("split", "test")
    probe_set = Probes.of_split(Path(dataset.path), split, limit=probes)
    shadow = build_gallery(model.ref, dataset, current.name, split, cluster)
    comparison = compare(registry, (model, current), (model, shadow), probe_set, k)
    served = Pair(gallery=current.ref, model=model.ref)
    if comparison.regressed(tolerance) and not force_reason:
        why = (f"re-embedded gallery {shadow.ref} finds fewer probes than {served} ({comparison.summary()}), so "
               f"{served} stays served; to switch anyway, run the upgrade again with --force REASON")
        print(why)
        return Reembedded(gallery=shadow.ref, comparison=comparison, serving=served, shadow_reason=why)
    galleries.pair(current.name, alias, shadow.version, model.ref, reason=f"re-embedded by {model.ref}",
                   expected=(current.version, model.ref))
    print(f"serving {shadow.ref} with {model.ref} ({comparison.summary()})")
    return Reembedded(gallery=shadow.ref, comparison=comparison, serving=Pair(gallery=shadow.ref, model=model.ref))


def report(result: Upgrade) -> Upgrade:
    comparison = result.comparison.summary() if result.comparison else "no re-embed"
    interim = (f"  \nServed at once: {result.served_at_once} ({result.served_comparison.summary()})"
               if result.served_at_once and result.served_comparison else "")
    shadow = f"  \nIn the shadow: {result.shadow_reason}" if result.shadow else ""
    if result.reembedding:
        comparison = f"re-embedding in the background (flow run {result.reembedding})"
    create_markdown_artifact(key="upgrade", description=f"{result.before} -> {result.after}", markdown=(
        f"# Upgrade ({result.mode})\n\nBefore: {result.before}{interim}  \nServed now: {result.after}  \n"
        f"Re-embedded gallery's probes: {comparison}{shadow}\n\nPackage it: `alignops package "
        f"{result.after.model} --gallery-from {result.after.gallery}`"))
    print(f"{result.mode}: {result.before} -> {result.after} ({comparison})")
    return result


@flow(name="rollback_upgrade", log_prints=True)
def rollback_upgrade(gallery: str, alias: str = "production", reason: str = "") -> Pair:
    """Put a gallery's pair back to its previous holder, then its model's alias to the model of that pair."""
    registry = Platform.from_env().registry()
    galleries = registry.galleries()
    restored = galleries.rollback(gallery, alias, reason=reason)
    _, version, model_ref = serving_pair(galleries, gallery, alias)
    model = registry.resolve(model_ref)
    held = registry.get_alias(model.name, alias)
    if held is None or held.version != model.version:
        why = reason or f"rolled back with gallery {gallery}@{alias}"
        if held is not None and held.history and held.history[-1] == model.version:
            registry.rollback(model.name, alias, reason=why)
        else:
            registry.promote(model.name, model.version, alias, force_reason=why)
    pair = Pair(gallery=version.ref, model=model.ref)
    create_markdown_artifact(key="upgrade-rollback", description=f"{gallery}@{alias} -> {pair}",
                             markdown=f"# `{gallery}@{alias}` rolled back\n\nNow: {pair} (version "
                                      f"{restored.version}).  \nReason: {reason or '-'}")
    return pair
