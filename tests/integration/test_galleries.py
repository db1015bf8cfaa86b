"""Galleries as registry versions: `alignops gallery build` embeds a split with a model version and registers
it with its embedding space, the model and the data; a bento may pair a model with a registered gallery only
where a compatibility record allows it, else the refusal says what to do."""

import json
import shutil

import numpy as np
import pytest
from cli_invoke import invoke

from components.evaluation.gallery import Gallery
from components.models.embedder import Embedder
from flows.gallery import pairing
from flows.steps.platform import Platform
from registry.registry import RegistryError

pytestmark = pytest.mark.slow


@pytest.fixture
def model(tiny_artifact, tmp_path):
    name = f"gallery-model-{tmp_path.name[-10:].lower().strip('_-')}".replace("_", "-")
    return Platform.from_env().registry().register(name, tiny_artifact, reason="gallery test")


def test_a_built_gallery_is_a_registered_version_in_the_models_space(prefect_harness, model, tiny_dataset, tmp_path):
    name = f"{model.name}-photos"
    built = invoke("gallery", "build", model.ref, str(tiny_dataset), "--name", name)
    assert built.exit_code == 0, built.output
    assert f"gallery {name}:1: 20 images from {model.ref} in space {model.ref} (exact index)" in built.output

    galleries = Platform.from_env().registry().galleries()
    record = galleries.get_version(name, 1)
    assert record.embedding_space == model.ref and record.lineage.parent_model == model.ref
    assert sorted(record.files) == ["embeddings.safetensors", "index.json", "items.json"]
    gallery = Gallery.load(galleries.download(name, 1, tmp_path / "gallery"))  # checksums verified
    expected = Embedder.load(Platform.from_env().registry().download(model.name, model.version, tmp_path / "m"))
    first = tiny_dataset / gallery.items[0]["image"]
    np.testing.assert_allclose(gallery.embeddings[0], expected.encode_images([first])[0], atol=1e-5)

    assert invoke("gallery", "promote", name, "1", "--reason", "first").exit_code == 0
    listed = json.loads(invoke("gallery", "list", name, "--json").output)
    assert [(g["version"], g["aliases"], g["tags"]["size"]) for g in listed] == [(1, ["production"], "20")]
    assert [e["event"] for e in json.loads(invoke("gallery", "history", name, "--json").output)] == [
        "registered", "alias_set"]


def test_a_model_pairs_with_a_gallery_only_where_its_space_allows(model, tiny_artifact, tmp_path):
    registry = Platform.from_env().registry()
    galleries = registry.galleries()
    folder = tmp_path / "g"
    Gallery(np.eye(4, 8, dtype=np.float32), [{"image_id": str(i)} for i in range(4)]).save(folder)
    old_gallery = galleries.register(f"{model.name}-old", folder, space=model.ref)
    assert pairing(model, old_gallery) is None  # one space

    shared = registry.register(model.name, tiny_artifact, space=model.ref)  # trained with bct against it
    assert pairing(shared, old_gallery) is None

    with_projection = shutil.copytree(tiny_artifact, tmp_path / "projected")
    compat_file = f"compat/{model.name}-v{model.version}.safetensors"
    (with_projection / "compat").mkdir()
    (with_projection / compat_file).write_bytes(b"stand-in")
    projected = registry.register(model.name, with_projection, compatibility=[{
        "space": model.ref, "via": "projection", "projection": compat_file}])
    assert pairing(projected, old_gallery) == compat_file

    stranger = registry.register(model.name, tiny_artifact)  # a space of its own
    with pytest.raises(RegistryError) as refused:
        pairing(stranger, old_gallery)
    assert f"{stranger.ref} (space {stranger.ref}) cannot query gallery {old_gallery.ref}" in str(refused.value)
    assert f"alignops gallery build {stranger.ref} DATASET" in str(refused.value)


def test_a_promotion_that_would_strand_a_production_gallery_is_refused(prefect_harness, model, tiny_artifact, tmp_path):
    from flows.promote import promote

    registry = Platform.from_env().registry()
    passing = {"policy": "t", "passed": True, "rules": []}
    first = registry.register(model.name, tiny_artifact, gate=passing)
    folder = tmp_path / "g"
    Gallery(np.eye(4, 8, dtype=np.float32), [{"image_id": str(i)} for i in range(4)]).save(folder)
    gallery = registry.galleries().register(f"{model.name}-live", folder, space=first.ref,
                                            lineage={"parent_model": first.ref})
    registry.galleries().set_alias(gallery.name, "production", gallery.version)
    promote(model.name, first.version)

    stranger = registry.register(model.name, tiny_artifact, gate=passing)  # a space of its own
    with pytest.raises(RegistryError, match=f"gallery {gallery.ref} .* cannot be searched by {stranger.ref}"):
        promote(model.name, stranger.version)
    compatible = registry.register(model.name, tiny_artifact, gate=passing, space=first.ref)
    promote(model.name, compatible.version)  # shares the gallery's space
    assert registry.get_alias(model.name, "production").version == compatible.version
    promote(model.name, stranger.version, force_reason="gallery re-index scheduled tonight")
    assert registry.get_alias(model.name, "production").version == stranger.version
