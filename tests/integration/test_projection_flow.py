"""The `project` flow and a bento over an older gallery: a model whose space is an unknown rotation of the
old one gets a fitted projection, is registered with the compatibility record, and is packaged against the
gallery the old model embedded (its queries projected, the smoke test searching); a model without such a
record is refused that gallery before anything is built."""

import pytest
from rotation import rotated

from components.compat.projection import space_file
from components.data.reference import DatasetRef
from flows.gallery import build_gallery
from flows.package import package
from flows.projection import project
from flows.steps.platform import Platform
from registry.registry import RegistryError

pytestmark = pytest.mark.slow

POLICY = """
name: projection-test
compatibility:
  "*/t2i_r1": 0.05
"""


def test_a_projected_model_is_registered_compatible_and_served_over_the_old_gallery(
        prefect_harness, tiny_artifact, tiny_dataset, tmp_path):
    registry, name = Platform.from_env().registry(), "projected-upgrade"
    old = registry.register(name, tiny_artifact)
    new = registry.register(name, rotated(tiny_artifact, tmp_path / "rotated"))
    gallery = build_gallery(old.ref, DatasetRef(path=str(tiny_dataset)), f"{name}-photos")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)

    judged = project(new.ref, old.ref, DatasetRef(path=str(tiny_dataset)), steps=200, gate_policy=str(policy))
    record, measured = judged.record, judged.measured
    assert record.lineage.parent_model == new.ref and record.version == new.version + 1
    assert judged.verdict.passed and {r.rule for r in judged.verdict.rules} == {"compatible", "compatible_own"}
    (compatible,) = record.compatibility
    assert (compatible.space, compatible.via, compatible.projection) == (old.ref, "projection", space_file(old.ref))
    assert compatible.projection in record.files and record.embedding_space == record.ref
    cross = {m: v for m, v in measured.metrics.items() if m.startswith("xm/")}
    assert cross and compatible.metrics == cross
    assert all(cross[m] >= measured.old_metrics[m.removeprefix("xm/")] for m in cross if m.endswith("t2i_r1"))
    assert record.lineage.model_extra["training"]["projection"]["into"] == old.ref

    bento, smoke = package(record.ref, gallery=gallery.ref)
    assert smoke.passed and smoke.search_hits > 0

    with pytest.raises(RegistryError, match=f"{new.ref} .* cannot query gallery {gallery.ref}"):
        package(new.ref, gallery=gallery.ref)
