"""The `upgrade` flow: a new model takes over a gallery's serving pair. An incompatible model gets a gallery
built in the shadow, compared on probes, and switches with the gallery in one move; a compatible one serves
the old gallery at once and switches again when it is re-embedded; a rollback puts both back; and concurrent
moves of one pair leave exactly one winner, on the local store and on S3."""

import json
import multiprocessing as mp

import numpy as np
import pytest
from cli_invoke import invoke
from rotation import rotated

import flows.upgrade
from components.data.reference import DatasetRef
from components.evaluation.gallery import Gallery
from flows.gallery import build_gallery
from flows.package import registered_gallery
from flows.promote import promotion_check
from flows.steps.platform import Platform
from flows.upgrade import Pair, rollback_upgrade, switch, upgrade
from registry.registry import Registry, RegistryError

pytestmark = pytest.mark.slow

PASSING = {"policy": "t", "passed": True, "rules": []}


@pytest.fixture
def served(prefect_harness, tiny_artifact, tiny_dataset, tmp_path):
    """v1 at `production`, serving its gallery (embedded from the test split) as the pair (g:1, v1)."""
    registry = Platform.from_env().registry()
    name = f"upgrade-{tmp_path.name[-12:].lower().strip('_-')}".replace("_", "-")
    v1 = registry.register(name, tiny_artifact, gate=PASSING)
    registry.promote(v1.name, v1.version)
    gallery = build_gallery(v1.ref, DatasetRef(path=str(tiny_dataset)), f"{name}-photos")
    registry.galleries().pair(gallery.name, "production", gallery.version, v1.ref)
    return registry, v1, gallery


def held(registry, gallery_name: str, model_name: str) -> tuple[int, str, int]:
    pair = registry.galleries().get_alias(gallery_name, "production")
    return pair.version, pair.paired_model, registry.get_alias(model_name, "production").version


def test_an_incompatible_model_switches_with_its_shadow_gallery_and_rolls_back_with_it(served, tiny_dataset,
                                                                                       tmp_path):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, rotated(registry.download(v1.name, 1, tmp_path / "v1"), tmp_path / "v2"),
                           gate=PASSING)  # the same ranking, in a space of its own

    result = upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), probes=40)
    assert result.mode == "re-indexed" and result.served_at_once is None
    assert result.before == Pair(gallery=gallery.ref, model=v1.ref)
    assert result.after == Pair(gallery=f"{gallery.name}:2", model=v2.ref)
    shadow = registry.galleries().get_version(gallery.name, 2)
    assert shadow.embedding_space == v2.ref and shadow.lineage.parent_model == v2.ref
    comparison = result.comparison
    assert comparison.probes == 40 and comparison.overlap >= 0.95  # a rotation ranks as the original does
    assert comparison.recall_after == pytest.approx(comparison.recall_before, abs=0.03)
    assert held(registry, gallery.name, v1.name) == (2, v2.ref, 2)
    with pytest.raises(RegistryError, match=f"serves with {v2.ref}, not {v1.ref}: package that model"):
        registered_gallery(registry, v1, f"{gallery.name}@production", tmp_path / "bento-gallery")
    assert registered_gallery(registry, v2, f"{gallery.name}@production", tmp_path / "g").ref == shadow.ref

    assert rollback_upgrade(gallery.name, reason="test") == Pair(gallery=gallery.ref, model=v1.ref)
    assert held(registry, gallery.name, v1.name) == (1, v1.ref, 1)
    moves = [(e.event, e.version, e.details.get("paired_model"))
             for e in registry.galleries().events(gallery.name) if e.event != "registered"]
    assert moves == [("alias_set", 1, v1.ref), ("alias_set", 2, v2.ref), ("rolled_back", 1, v1.ref)]


def test_a_compatible_model_serves_the_old_gallery_at_once_then_its_own(served, tiny_dataset, tiny_artifact):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact, gate=PASSING, space=v1.ref)  # trained with bct into v1's

    result = upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), probes=40)
    assert result.mode == "compatible"
    assert result.served_at_once == Pair(gallery=gallery.ref, model=v2.ref)
    served = result.served_comparison  # the pair actually served, measured as a bento answers
    assert served.probes == 40 and served.overlap == 1.0 and served.recall_after == served.recall_before
    assert result.after == Pair(gallery=f"{gallery.name}:2", model=v2.ref) and result.shadow is None
    record = registry.galleries().get_alias(gallery.name, "production")
    assert (record.history, record.paired_history) == ([1, 1], [v1.ref, v2.ref])  # the interim pair was served
    assert held(registry, gallery.name, v1.name) == (2, v2.ref, 2)


def test_in_the_background_the_upgrade_ends_serving_the_old_gallery_and_a_deployment_run_re_embeds_it(
        served, tiny_dataset, tiny_artifact):
    """As the `upgrade` deployment runs it: the run ends once v2 serves over g:1, leaving a run of the
    `reembed-gallery` deployment with what it needs; that run (here executed in-process, as a worker would)
    then moves the pair to the re-embedded gallery."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    from flows.upgrade import REEMBED_DEPLOYMENT, reembed_gallery

    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact, gate=PASSING, space=v1.ref)
    reembed_gallery.to_deployment(REEMBED_DEPLOYMENT.split("/")[1]).apply()

    result = upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), probes=40, background=True)
    assert result.after == result.served_at_once == Pair(gallery=gallery.ref, model=v2.ref)
    assert result.comparison is None and held(registry, gallery.name, v1.name) == (1, v2.ref, 2)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(result.reembedding)
    assert run.state.type == StateType.SCHEDULED  # waiting for a worker, not run inside the upgrade
    assert {key: run.parameters[key] for key in ("model_ref", "gallery", "probes")} == {
        "model_ref": v2.ref, "gallery": gallery.ref, "probes": 40}

    done = reembed_gallery(**run.parameters)
    assert done.serving == Pair(gallery=f"{gallery.name}:2", model=v2.ref) and done.shadow_reason is None
    assert held(registry, gallery.name, v1.name) == (2, v2.ref, 2)


def test_the_cli_upgrade_of_a_compatible_model_exits_0_and_prints_the_served_pairs_probes(served, tiny_dataset,
                                                                                          tiny_artifact):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact, gate=PASSING, space=v1.ref)
    result = invoke("gallery", "upgrade", v2.ref, "--gallery", gallery.name, "--dataset", str(tiny_dataset),
                    "--probes", "40")
    assert result.exit_code == 0, result.output
    assert f"served at once: {gallery.ref} with {v2.ref} (40 probes: overlap@10 1.000" in result.output
    assert f"-> {gallery.name}:2 with {v2.ref}" in result.output and "re-embedded gallery: 40 probes" in result.output
    assert held(registry, gallery.name, v1.name) == (2, v2.ref, 2)


def test_a_compatible_upgrade_whose_re_embed_finds_less_succeeds_and_says_what_stays_in_the_shadow(
        served, tiny_dataset, tiny_artifact, monkeypatch):
    """What is served changed as intended (the new model over the old gallery, measured): success, whatever the
    re-embed did; a re-embed that finds less stays in the shadow, named, with its figures. (The tiny model is
    untrained, so the re-embed's probes are made to fall at the comparison; everything else runs as it is.)"""
    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact, gate=PASSING, space=v1.ref)
    measured = flows.upgrade.compare

    def a_re_embed_that_finds_less(registry, before, after, probes, k):
        found = measured(registry, before, after, probes, k)
        shadow = after[1].version != gallery.version
        return found.model_copy(update={"recall_after": found.recall_before - 0.5}) if shadow else found

    monkeypatch.setattr(flows.upgrade, "compare", a_re_embed_that_finds_less)
    result = upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), probes=40)
    now = Pair(gallery=gallery.ref, model=v2.ref)
    assert result.mode == "compatible" and result.after == result.served_at_once == now
    assert result.served_comparison.recall_after == result.served_comparison.recall_before
    assert result.comparison.recall_after < result.comparison.recall_before - 0.02
    assert result.shadow == f"{gallery.name}:2" and f"{now} stays served" in result.shadow_reason
    assert held(registry, gallery.name, v1.name) == (1, v2.ref, 2)  # the pair served, and the model's alias


def test_a_compatible_model_can_keep_the_old_gallery(served, tiny_dataset, tiny_artifact):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact, gate=PASSING, space=v1.ref)
    result = upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), reembed=False)
    assert result.after == result.served_at_once == Pair(gallery=gallery.ref, model=v2.ref)
    assert result.comparison is None and len(registry.galleries().list_versions(gallery.name)) == 1


def test_a_shadow_gallery_that_finds_less_stays_in_the_shadow(served, tiny_dataset, tmp_path):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, rotated(registry.download(v1.name, 1, tmp_path / "v1"), tmp_path / "v2"),
                           gate=PASSING)
    with pytest.raises(RegistryError, match="stays in the shadow; pass --force REASON"):
        upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)), probes=20, tolerance=-1.0)
    assert held(registry, gallery.name, v1.name) == (1, v1.ref, 1)  # nothing moved
    assert [r.version for r in registry.galleries().list_versions(gallery.name)] == [1, 2]  # kept, unaliased


def test_a_model_without_a_passing_gate_is_refused_before_anything_is_built(served, tiny_dataset, tiny_artifact):
    registry, v1, gallery = served
    v2 = registry.register(v1.name, tiny_artifact)
    with pytest.raises(RegistryError, match=f"{v2.ref} has no passing gate verdict"):
        upgrade(v2.ref, gallery.name, DatasetRef(path=str(tiny_dataset)))
    assert len(registry.galleries().list_versions(gallery.name)) == 1


def _move_pair(url: str, version: int) -> str:
    try:
        Registry.from_url(url).galleries().pair("photos", "production", version, f"model:{version}",
                                                expected=(1, "model:1"))
        return "moved"
    except RegistryError:
        return "refused"


def _watch(url: str, rounds: int) -> list[tuple[int, str]]:
    galleries = Registry.from_url(url).galleries()
    return [(held.version, held.paired_model) for _ in range(rounds)
            if (held := galleries.get_alias("photos", "production"))]


def test_concurrent_upgrades_of_one_pair_leave_one_winner_and_no_mixed_pair(registry, tmp_path):
    galleries = registry.galleries()
    folder = tmp_path / "gallery"
    Gallery(np.eye(2, 4, dtype=np.float32), [{"image_id": "a"}, {"image_id": "b"}]).save(folder)
    for _ in range(5):
        galleries.register("photos", folder)
    galleries.pair("photos", "production", 1, "model:1")
    with mp.get_context("spawn").Pool(5) as pool:  # four writers and a reader: more only cost CI time
        watching = pool.apply_async(_watch, (registry.store.url, 200))
        outcomes = pool.starmap(_move_pair, [(registry.store.url, v) for v in range(2, 6)])
        seen = watching.get(timeout=300)
    assert outcomes.count("moved") == 1
    winner = outcomes.index("moved") + 2
    final = galleries.get_alias("photos", "production")
    assert (final.version, final.paired_model, final.history) == (winner, f"model:{winner}", [1])
    assert all(model == f"model:{version}" for version, model in seen)  # every read: a whole pair
    assert [e.details["paired_model"] for e in galleries.events("photos") if e.event == "alias_set"] == [
        "model:1", f"model:{winner}"]


def test_the_cli_upgrades_lists_the_pair_and_rolls_back(served, tiny_dataset, tmp_path):
    from cli_invoke import invoke

    registry, v1, gallery = served
    v2 = registry.register(v1.name, rotated(registry.download(v1.name, 1, tmp_path / "v1"), tmp_path / "v2"),
                           gate=PASSING)
    unversioned = invoke("gallery", "upgrade", v2.ref, "--gallery", gallery.name)
    assert unversioned.exit_code == 1 and "which is no version: name its data with --dataset DIR" in unversioned.output

    done = invoke("gallery", "upgrade", v2.ref, "--gallery", gallery.name, "--dataset", str(tiny_dataset),
                  "--probes", "20", "--k", "5")
    assert done.exit_code == 0, done.output
    assert (f"{gallery.name}@production (re-indexed): {gallery.ref} with {v1.ref} -> {gallery.name}:2 with "
            f"{v2.ref}") in done.output
    assert "20 probes: overlap@5 " in done.output
    listed = invoke("gallery", "list", gallery.name, "--json")
    assert [g["aliases"] for g in json.loads(listed.output)] == [[], ["production"]]
    table = invoke("gallery", "list", gallery.name)
    assert f"production (with {v2.ref})" in " ".join(table.output.split())

    rolled = invoke("gallery", "rollback", gallery.name, "--reason", "probe complaints")
    assert rolled.exit_code == 0 and f"{gallery.name}@production: {gallery.ref} with {v1.ref}" in rolled.output


def _switch(url: str, model_version: int) -> str:
    """An upgrade's switch: gallery `photos:N` (embedded by `m:N`) with model `m:N`, planned against (1, m:1)."""
    registry = Registry.from_url(url)
    try:
        switch(registry, registry.galleries().get_version("photos", model_version), registry.get_version(
            "m", model_version), "production", expected=(1, "m:1"), reason="race", force_reason=None)
        return "switched"
    except RegistryError:
        return "refused"


def _promote(url: str, model_version: int) -> str:
    registry = Registry.from_url(url)
    try:
        registry.promote("m", model_version, check=promotion_check(registry, "production", None))
        return "promoted"
    except RegistryError:
        return "refused"


def test_upgrades_racing_promotions_never_leave_the_model_unable_to_search_its_gallery(registry, tmp_path):
    """m:1..3 each in a space of its own, each with a gallery it embedded; m:4 shares m:1's space (bct).
    Two upgrades (to m:2 and m:3) race promotions of m:2, m:3 and m:4 (each, alone, searchable only in
    its own gallery). Whatever order the writes land in: one upgrade wins, and the model holding the alias
    can query the gallery the pair serves."""
    folder = tmp_path / "files"
    Gallery(np.eye(2, 4, dtype=np.float32), [{"image_id": "a"}, {"image_id": "b"}]).save(folder)
    for n in (1, 2, 3):
        registry.register("m", folder, gate=PASSING)
        registry.galleries().register("photos", folder, space=f"m:{n}", lineage={"parent_model": f"m:{n}"})
    registry.register("m", folder, gate=PASSING, space="m:1")
    registry.promote("m", 1)
    registry.galleries().pair("photos", "production", 1, "m:1")

    with mp.get_context("spawn").Pool(5) as pool:
        switched = [pool.apply_async(_switch, (registry.store.url, n)) for n in (2, 3)]
        promoted = [pool.apply_async(_promote, (registry.store.url, n)) for n in (2, 3, 4)]
        outcomes = [r.get(timeout=300) for r in switched], [r.get(timeout=300) for r in promoted]
    assert outcomes[0].count("switched") == 1, outcomes
    pair = registry.galleries().get_alias("photos", "production")
    holder = registry.get_version("m", registry.get_alias("m", "production").version)
    gallery = registry.galleries().get_version("photos", pair.version)
    assert pair.paired_model == f"m:{pair.version}" and pair.version in (2, 3)
    assert holder.can_query(gallery.embedding_space), (outcomes, holder.ref, pair)
