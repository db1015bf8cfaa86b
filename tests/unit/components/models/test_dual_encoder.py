import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from components.config import PRESETS, preset
from components.data.transforms import ImageTransform
from components.models.artifact import ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.models.embedder import Embedder

SMALL_PRESETS = [name for name, c in PRESETS.items() if c.vision.image_size <= 64]


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_forward_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    config = preset(name)
    model = DualEncoder(config)
    pixels = torch.randn(4, 3, config.vision.image_size, config.vision.image_size)
    tokens = torch.randint(4, config.tokenizer.vocab_size, (4, config.tokenizer.context_length))
    tokens[:, 10] = config.tokenizer.eos_id
    encoded = model(pixels, tokens)
    images, texts, scale = encoded.image_emb, encoded.text_emb, model.logit_scale.exp()
    assert images.shape == texts.shape == (4, config.embed_dim)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(4))
    (scale * images @ texts.T).logsumexp(dim=1).mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name
    no_grad = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    # the text position embeddings past the EOS position get no gradient through causal attention
    assert all("text" in n and "position" in n for n in no_grad), no_grad


def test_text_pooling_reads_the_eos_position():
    torch.manual_seed(0)
    config = preset("tiny")
    model = DualEncoder(config).eval()
    tokens = torch.randint(4, config.tokenizer.vocab_size, (1, config.tokenizer.context_length))
    tokens[0, 5] = config.tokenizer.eos_id
    changed = tokens.clone()
    changed[0, 6:] = 0  # what follows EOS does not matter to a causal tower pooled at EOS
    torch.testing.assert_close(model.encode_text(tokens), model.encode_text(changed))


def test_artifact_round_trip_is_exact(tiny_artifact, tmp_path):
    artifact = ModelArtifact.load(tiny_artifact)
    again = ModelArtifact.load(artifact.save(tmp_path / "copy"))
    for key, value in artifact.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert again.config == artifact.config and again.lineage == artifact.lineage
    for name in ("model.safetensors", "config.json", "tokenizer/tokenizer.json", "lineage.json"):
        assert (tmp_path / "copy" / name).read_bytes() == (tiny_artifact / name).read_bytes()
    a, b = Embedder(artifact), Embedder(again)
    assert (a.encode_texts(["a red disc"]) == b.encode_texts(["a red disc"])).all()


def test_weights_are_safetensors_without_pickle(tiny_artifact):
    with safe_open(str(tiny_artifact / "model.safetensors"), framework="pt") as f:
        assert "logit_scale" in f.keys()
    assert json.loads((tiny_artifact / "config.json").read_text())["embed_dim"] == preset("tiny").embed_dim


def test_loading_an_incomplete_artifact_names_what_is_missing(tiny_artifact, tmp_path):
    (tmp_path / "config.json").write_text((tiny_artifact / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="missing \\['model.safetensors', 'tokenizer', 'lineage.json'\\]"):
        ModelArtifact.load(tmp_path)


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_fitted_uint8_stacks_normalise_to_the_per_image_pixels_bit_for_bit(fit):
    transform = ImageTransform(32, (0.48, 0.46, 0.41), (0.27, 0.26, 0.28), fit)
    generator = np.random.default_rng(0)
    images = [Image.fromarray(generator.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in
              [(32, 32), (40, 64), (90, 20)]]
    fitted = np.stack([transform.fit(image) for image in images])
    assert fitted.dtype == np.uint8 and fitted.shape == (3, 32, 32, 3)
    stacked = transform.normalise(fitted)
    for image, row, square in zip(images, stacked, fitted, strict=True):
        direct = (torch.from_numpy(square.astype(np.float32) / 255.0).permute(2, 0, 1) - transform.mean) / transform.std
        assert torch.equal(transform(image), row) and torch.equal(row, direct)


def test_encoding_fitted_images_equals_encoding_the_images(tiny_artifact):
    embedder = Embedder.load(tiny_artifact)
    images = [Image.new("RGB", (48, 40), colour) for colour in [(200, 30, 30), (30, 30, 200)]]
    fitted = np.stack([embedder.transform.fit(image) for image in images])
    np.testing.assert_array_equal(embedder.encode_fitted(fitted), embedder.encode_images(images))
