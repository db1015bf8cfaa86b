"""The demo's model upgrade, on a model line of its own (`search`): v1 trained, promoted, and its gallery
registered and served; a v2 trained longer from another seed without compatibility, one with `bct` against
v1, and a projection fitted from the plain v2 into v1's space. The table compares them on the held-out split,
then the `upgrade` flow hands the gallery to the compatible v2 without re-embedding it first."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from components.compat.cross_model import measure_compatibility
from components.config import TrainConfig
from components.data.reference import DatasetRef
from components.evaluation.metric_names import cross_model_name
from components.evaluation.suites import EvalTarget
from components.models.embedder import Embedder
from flows.gallery import build_gallery
from flows.lifecycle import LifecycleConfig, lifecycle
from flows.projection import project
from flows.steps.output import bold, console, rich_table
from flows.steps.platform import Platform
from flows.upgrade import Upgrade, upgrade
from registry.records import VersionRecord
from registry.registry import RegistryError

REINDEXED = 1_000_000  # images: the gallery whose re-embedding a compatible upgrade defers


class UpgradeDemoConfig(BaseModel):
    model_name: str = "search"
    # v1 is trained briefly so that the upgrade has room to meet BCT's criterion (its queries against v1's
    # gallery at least as good as v1's own): at 100 steps v1 reached 0.614 R@1 and bct v2 0.590 new->old.
    old_steps: int = Field(60, ge=1, description="v1's training steps")
    new_steps: int = Field(200, ge=1, description="each v2's: the upgrade is trained longer")


class UpgradeTable(BaseModel):
    versions: dict[str, str]  # old, plain, bct, projected -> name:version
    eval_set: str
    chance: float
    old_old: float
    new_new: float
    without: float
    with_bct: float
    with_projection: float
    reindex_images_per_s: float
    upgrade: Upgrade | None
    refusal: str | None = None

    @property
    def reindex_hours(self) -> float:
        return REINDEXED / self.reindex_images_per_s / 3600


def upgrade_demo(dataset: DatasetRef, train: TrainConfig, gate_policy: str, config: UpgradeDemoConfig) -> UpgradeTable:
    """v1 is trained with `train` for `config.old_steps`, both v2s from the next seed for `config.new_steps`."""
    console.rule(bold(f"upgrade: {config.model_name} v1 and its gallery, two v2s, a projection"))
    old = lifecycle(LifecycleConfig(model_name=config.model_name, dataset=dataset, gate_policy=gate_policy,
                                    train=steps(train, config.old_steps), package=False,
                                    run_name=f"upgrade-{config.model_name}-v1"))
    registry, v1 = Platform.from_env().registry(), old.judged.record
    if old.promoted_to is None:
        raise RegistryError(f"{v1.ref} failed its gate, so there is nothing in production to upgrade")
    gallery = build_gallery(v1.ref, dataset, f"{v1.name}-photos")
    registry.galleries().pair(gallery.name, "production", gallery.version, v1.ref, reason="the demo's gallery")
    new = steps(train, config.new_steps).model_copy(update={"seed": train.seed + 1})
    trained = {kind: lifecycle(LifecycleConfig(
        model_name=v1.name, dataset=dataset, train=new, gate_policy=gate_policy, promote_to=None, package=False,
        run_name=f"upgrade-{v1.name}-{kind}", compatible_with=v1.ref if kind == "bct" else None)).judged
        for kind in ("plain", "bct")}
    plain, bct = trained["plain"], trained["bct"]
    projected = project(plain.record.ref, v1.ref, dataset, gate_policy=gate_policy)
    eval_set = next(iter(old.judged.measured.sizes))
    t2i, xm = f"{eval_set}/t2i_r1", cross_model_name(f"{eval_set}/t2i_r1")
    without = cross_without_compatibility(registry, plain.record, v1, EvalTarget(
        name=eval_set, dataset_dir=dataset.path, split="test"))
    table = UpgradeTable(
        versions={"old": v1.ref, "plain": plain.record.ref, "bct": bct.record.ref, "projected": projected.record.ref},
        eval_set=eval_set, chance=old.judged.measured.chance[t2i], old_old=old.judged.measured.metrics[t2i],
        new_new=plain.measured.metrics[t2i], without=without[xm], with_bct=bct.measured.metrics[xm],
        with_projection=projected.measured.metrics[xm],
        reindex_images_per_s=int(gallery.tags["size"]) / float(gallery.tags["embedding_seconds"]), upgrade=None)
    try:
        table.upgrade = upgrade(bct.record.ref, gallery.name, dataset)
    except RegistryError as refused:  # e.g. the bct version failed its gate: the table still stands
        table.refusal = str(refused)
    return table


def steps(train: TrainConfig, max_steps: int) -> TrainConfig:
    return train.model_copy(update={"optim": train.optim.model_copy(update={"max_steps": max_steps})})


def cross_without_compatibility(registry, new: VersionRecord, old: VersionRecord,
                                target: EvalTarget) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        models = [Embedder.load(registry.download(r.name, r.version, Path(tmp) / str(r.version))) for r in (new, old)]
        return measure_compatibility(*models, target).cross


def print_upgrade(table: UpgradeTable) -> None:
    rows = [("old/old: v1 queries, v1 gallery", table.old_old), ("new/new: v2 queries, v2 gallery", table.new_new),
            ("new->old without compatibility", table.without), ("new->old, v2 trained with bct", table.with_bct),
            ("new->old, v2 through a projection", table.with_projection), ("chance", table.chance)]
    versions = ", ".join(f"{kind} {ref}" for kind, ref in table.versions.items())
    console.print(rich_table(f"Upgrade without re-embedding ({versions}): text->image R@1 on {table.eval_set}",
                             ["queries -> gallery", "R@1"], [(label, f"{value:.3f}") for label, value in rows]))
    console.print(f"Re-embedding a {REINDEXED:,}-image gallery at this machine's {table.reindex_images_per_s:.0f} "
                  f"images/s would take {table.reindex_hours:.1f} h: a compatible v2 serves the old one meanwhile.")
    if table.upgrade:
        result = table.upgrade
        console.print(f"`upgrade` ({result.mode}): {result.before} -> served at once {result.served_at_once} -> "
                      f"{result.after}; {result.comparison.summary() if result.comparison else ''}")
    else:
        console.print(f"`upgrade` refused: {table.refusal}")
