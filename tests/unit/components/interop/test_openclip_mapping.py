"""open_clip's names and settings against ours, without open_clip: exact round trips of the links, and
refusals that name the setting or the tensor (the parity with open_clip itself: tests/interop)."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import pytest
import torch

from components.config import ModelConfig, TextTowerConfig, TokenizerConfig, VisionTowerConfig
from components.interop.clip_bpe import clip_bpe_tokenizer
from components.interop.export import export
from components.interop.mapping import to_ours, to_theirs
from components.interop.openclip import (
    WEIGHTS_FILE,
    OpenClipSource,
    import_openclip,
    links,
    model_config,
    resolve_source,
)
from components.interop.timm_vit import TimmVit, timm_name_of, timm_vit
from components.interop.weights import read_weights
from components.models.artifact import Lineage, ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.text.preprocessing import openclip_canonicalize, openclip_lower
from components.text.tokenizer import train_tokenizer

SMALL_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 16,
                                              "patch_size": 8},
              "text_cfg": {"context_length": 16, "vocab_size": 500, "width": 48, "heads": 4, "layers": 2}}
TOKENS = TokenizerConfig(vocab_size=500, context_length=16, pad_id=0, sos_id=498, eos_id=499, sos_token="<s>",
                         eos_token="</s>", pad_token="!")


def source(model_cfg: dict, preprocess: dict | None = None) -> OpenClipSource:
    return OpenClipSource("test", model_cfg, preprocess or {}, Path("weights.bin"), None, None)


def small_siglip() -> tuple[ModelConfig, TimmVit]:
    tower = VisionTowerConfig(kind="siglip_vit", image_size=32, patch_size=8, width=64, layers=2, heads=4,
                              hidden_act="gelu")
    config = ModelConfig(family="siglip", embed_dim=64, vision=tower, projection=False, init_logit_bias=-10.0,
                         text=TextTowerConfig(kind="siglip", width=64, layers=2, heads=4, hidden_act="gelu"),
                         tokenizer=TokenizerConfig(vocab_size=100, context_length=16, sos_id=None, sos_token=None))
    return config, TimmVit("vit_test_siglip", "siglip", tower, "map")


def test_clip_and_siglip_links_round_trip_exactly():
    clip = model_config(source(SMALL_CLIP), TOKENS, 2.0, None)
    siglip, timm = small_siglip()
    for config, tower, custom_text in ((clip, None, False), (siglip, timm, True)):
        torch.manual_seed(0)
        ours = DualEncoder(config, load_pretrained=False).state_dict()
        mapping = links(config, tower, custom_text)
        theirs = to_theirs(mapping, ours)
        back = to_ours(mapping, theirs, {k: v.shape for k, v in ours.items()}, "test")
        assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    # open_clip's fused in-projection is q, k, v stacked; its projections are (in, out) matrices
    assert "visual.transformer.resblocks.0.attn.in_proj_weight" in to_theirs(links(clip, None, False), ours_of(clip))


def ours_of(config: ModelConfig) -> dict[str, torch.Tensor]:
    return DualEncoder(config, load_pretrained=False).state_dict()


@pytest.mark.parametrize("change, named", [
    ({"vision_cfg": {**SMALL_CLIP["vision_cfg"], "ls_init_value": 0.1}}, "vision_cfg.ls_init_value"),
    ({"vision_cfg": {**SMALL_CLIP["vision_cfg"], "attentional_pool": True}}, "vision_cfg.attentional_pool"),
    ({"vision_cfg": {**SMALL_CLIP["vision_cfg"], "layers": [3, 4, 6, 3]}}, "ResNet"),
    ({"vision_cfg": {**SMALL_CLIP["vision_cfg"], "rope": True}}, "vision_cfg.rope is not a setting"),
    ({"text_cfg": {**SMALL_CLIP["text_cfg"], "embed_cls": True}}, "text_cfg.embed_cls"),
    ({"text_cfg": {"hf_model_name": "org/bert"}}, "hf_proj_type='mlp' is not supported"),  # open_clip's default
    ({"text_cfg": {"hf_model_name": "org/bert", "hf_proj_type": "linear"}}, "pass its local folder"),
    ({"multimodal_cfg": {"layers": 12}}, "CoCa"),
    ({"text_cfg": {**SMALL_CLIP["text_cfg"], "pool_type": "eos", "eos_id": 2}}, "pools this text tower at token id 2"),
    ({"vision_cfg": {"timm_model_name": "convnext_base"}}, "not one alignops maps"),
    ({"vision_cfg": {"timm_model_name": "vit_base_patch16_siglip_224", "timm_pool": "avg", "timm_proj": "none"}},
     "timm_pool='map'"),
])
def test_settings_that_compute_something_else_are_refused_by_name(change, named):
    with pytest.raises((ValueError, FileNotFoundError), match=named.replace("[", r"\[")):
        model_config(source(SMALL_CLIP | change), TOKENS, 2.0, None)


def test_a_siglip_image_tower_with_a_clip_text_tower_is_refused():
    mixed = SMALL_CLIP | {"vision_cfg": {"timm_model_name": "vit_base_patch16_siglip_224", "timm_pool": "map",
                                         "timm_proj": "none"}}
    with pytest.raises(ValueError, match="maps CLIP's pair and SigLIP's pair"):
        model_config(source(mixed), TOKENS, 2.0, None)


@pytest.mark.parametrize("preprocess", [{"resize_mode": "longest"}, {"interpolation": "bilinear"}, {"size": 64}])
def test_preprocessing_we_do_not_reproduce_is_refused(preprocess):
    with pytest.raises(ValueError, match="preprocessing"):
        model_config(source(SMALL_CLIP, preprocess), TOKENS, 2.0, None)


def test_preprocessing_defaults_follow_open_clips_tags():
    clip = model_config(source(SMALL_CLIP), TOKENS, 2.0, None)
    squashed = model_config(source(SMALL_CLIP, {"resize_mode": "squash", "mean": [0.5] * 3, "std": [0.5] * 3}),
                            TOKENS, 2.0, None)
    assert (clip.image_fit, clip.image_mean[0], clip.reduced_decode) == ("crop", 0.48145466, False)
    assert (squashed.image_fit, squashed.image_mean) == ("squash", (0.5, 0.5, 0.5))


def test_the_timm_table_reads_names_both_ways():
    tower = timm_vit("vit_so400m_patch14_siglip_224").tower
    assert (tower.width, tower.layers, tower.heads, int(tower.width * tower.mlp_ratio)) == (1152, 27, 16, 4304)
    by_shape = tower.model_copy(update={"timm_name": None})  # a SigLIP tower that did not come from timm
    assert timm_name_of(tower) == timm_name_of(by_shape) == "vit_so400m_patch14_siglip_224"
    assert timm_vit("vit_base_patch32_clip_quickgelu_224").tower.hidden_act == "quick_gelu"
    with pytest.raises(ValueError, match="none of timm's SigLIP ViTs"):  # HF SigLIP: tanh GELU, timm: exact
        timm_name_of(by_shape.model_copy(update={"hidden_act": "gelu_pytorch_tanh"}))


@pytest.fixture
def exported(tiny_artifact, tmp_path) -> tuple[ModelArtifact, Path]:
    artifact = ModelArtifact.load(tiny_artifact)
    export(artifact, "open_clip", tmp_path / "oc", "tiny:1")
    return artifact, tmp_path / "oc"


def test_our_model_in_open_clips_layout_imports_back_to_the_same_weights(exported):
    artifact, folder = exported
    again = import_openclip(resolve_source(str(folder)))
    state, back = artifact.model.state_dict(), again.model.state_dict()
    assert state.keys() == back.keys() and all(torch.equal(state[k], back[k]) for k in state)
    texts = ["a red square", "two blue circles on the left"]
    assert torch.equal(again.tokenizer(texts), artifact.tokenizer(texts))
    config = json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]
    assert config["text_cfg"]["pool_type"] == "eos"  # our BPE's end token is not its largest id


def test_weights_that_do_not_match_the_architecture_are_refused_naming_the_tensors(exported):
    from safetensors.torch import load_file, save_file

    _, folder = exported
    weights = load_file(str(folder / WEIGHTS_FILE))
    weights["visual.extra"] = weights.pop("visual.ln_post.bias")
    save_file(weights, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match=r"missing 1 \(visual.ln_post.bias\), unexpected 1 \(visual.extra\)"):
        import_openclip(resolve_source(str(folder)))


def test_a_checkpoint_is_bounded_and_never_unpickled(tmp_path):
    path = tmp_path / "model.bin"
    torch.save({"w": torch.zeros(1000)}, path)
    with pytest.raises(ValueError, match="more than a model of the declared shape can be"):
        read_weights(path, max_bytes=1000)
    torch.save({"logit_scale": torch.tensor(float("nan")), "w": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="NaN or infinite values in 1 tensor\\(s\\) \\(logit_scale\\)"):
        read_weights(path, max_bytes=1 << 20)
    path.write_bytes(pickle.dumps({"w": Lineage()}))  # an object to execute, not a tensor
    with pytest.raises(ValueError, match="objects other than tensors, and nothing of it was run"):
        read_weights(path, max_bytes=1 << 20)


def test_architecture_names_are_read_from_open_clips_folder_without_importing_it(tmp_path):
    package = tmp_path / "open_clip"
    (package / "model_configs").mkdir(parents=True)
    (package / "model_configs" / "Tiny-CLIP.json").write_text(json.dumps(SMALL_CLIP))
    found = resolve_source("Tiny-CLIP", tmp_path / "w.bin", package=package)
    assert found.model_cfg == SMALL_CLIP and found.architecture == "Tiny-CLIP" and found.tokenizer is None
    with pytest.raises(ValueError, match="neither a folder, a config JSON nor"):
        resolve_source("../secrets", tmp_path / "w.bin", package=package)
    with pytest.raises(FileNotFoundError, match="no open_clip config named 'ViT-X'"):
        resolve_source("ViT-X", tmp_path / "w.bin", package=package)
    with pytest.raises(ValueError, match="--checkpoint"):
        resolve_source("Tiny-CLIP", package=package)


def test_a_file_that_is_not_clips_merges_is_refused(tmp_path):
    path = tmp_path / "bpe.txt.gz"
    path.write_bytes(gzip.compress(b"version\na b\n"))
    with pytest.raises(ValueError, match="not a CLIP merges file"):
        clip_bpe_tokenizer(path)


def test_open_clips_text_clean_ups():
    assert openclip_lower("  A &amp;amp; B\u2019s   PHOTO ") == "a & b's photo"
    assert openclip_canonicalize("Hello, World_foo!!  (big)") == "hello world foo big"


def test_a_bert_text_tower_is_refused_by_open_clip_and_transformers_and_leaves_nothing(tmp_path):
    config = ModelConfig(embed_dim=32, vision=VisionTowerConfig(image_size=32, patch_size=8, width=32, layers=1,
                                                                heads=2),
                         text=TextTowerConfig(kind="bert", width=32, layers=1, heads=2),
                         tokenizer=TokenizerConfig(vocab_size=300, context_length=16))
    tokenizer = train_tokenizer(["a red square", "a blue circle"] * 20, config.tokenizer)
    config.tokenizer.vocab_size = tokenizer.vocab_size
    artifact = ModelArtifact(DualEncoder(config).eval(), tokenizer, Lineage())
    for format_ in ("open_clip", "hf"):
        with pytest.raises(ValueError, match="BERT"):
            export(artifact, format_, tmp_path / format_, "bert:1")
        assert not any((tmp_path / format_).iterdir())
    written = export(artifact, "onnx", tmp_path / "onnx", "bert:1")  # ONNX holds any towers
    assert {p.name for p in written} >= {"image_encoder.onnx", "text_encoder.onnx", "README.md"}
    with pytest.raises(FileExistsError, match="not an empty folder"):
        export(artifact, "onnx", tmp_path / "onnx", "bert:1")
