"""Pretrained weights, read from local files only: a packaged text tower, and CLIP / SigLIP checkpoints in
Hugging Face format (a directory with `config.json`, weights and `tokenizer.json`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import ValidationError
from tokenizers import Tokenizer
from transformers import BertConfig, CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

from components.config import CLIP_MEAN, CLIP_STD, ModelConfig, TextTowerConfig, TokenizerConfig, VisionTowerConfig
from components.models.artifact import Lineage, ModelArtifact, imported_from
from components.models.dual_encoder import DualEncoder
from components.models.text_checkpoints import pretrained_text_dir
from components.text.tokenizer import CaptionTokenizer


def with_pretrained_text(config: ModelConfig) -> tuple[ModelConfig, CaptionTokenizer]:
    """`config` with the pretrained text tower's shape and tokenizer, and that tokenizer."""
    directory = pretrained_text_dir(config.text.pretrained)
    bert = BertConfig.from_pretrained(directory, local_files_only=True)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    special = {"pad": "[PAD]", "sos": "[CLS]", "eos": "[SEP]"}
    tokens = TokenizerConfig(vocab_size=bert.vocab_size, context_length=config.tokenizer.context_length,
                             **{f"{k}_id": tokenizer.token_to_id(v) for k, v in special.items()},
                             **{f"{k}_token": v for k, v in special.items()})
    text = TextTowerConfig(kind="bert", width=bert.hidden_size, layers=bert.num_hidden_layers,
                           heads=bert.num_attention_heads, mlp_ratio=bert.intermediate_size / bert.hidden_size,
                           hidden_act=bert.hidden_act, pretrained=config.text.pretrained)
    config = config.model_copy(update={"text": text, "tokenizer": tokens})
    return config, CaptionTokenizer(tokenizer, tokens)


def _tower_shape(hf, kind: str, cls):
    shape = dict(width=hf.hidden_size, layers=hf.num_hidden_layers, heads=hf.num_attention_heads,
                 mlp_ratio=hf.intermediate_size / hf.hidden_size, hidden_act=hf.hidden_act, kind=kind)
    if cls is VisionTowerConfig:
        shape.update(image_size=hf.image_size, patch_size=hf.patch_size)
    return cls(**shape)


def import_hf_checkpoint(directory: Path) -> ModelArtifact:
    """A CLIP or SigLIP checkpoint in Hugging Face format as a model artifact, with identical embeddings."""
    directory = Path(directory)
    model_type = json.loads((directory / "config.json").read_text()).get("model_type")
    if model_type not in ("clip", "siglip"):
        raise ValueError(f"{directory} holds a {model_type!r} checkpoint; alignops imports 'clip' and 'siglip'")
    if not (directory / "tokenizer.json").exists():
        raise FileNotFoundError(f"{directory} has no tokenizer.json: save the tokenizer with a fast tokenizer first "
                                "(AutoTokenizer.from_pretrained(dir).save_pretrained(dir))")
    siglip = model_type == "siglip"
    # The checkpoint's declared shapes, as our config, checked against the artifact bounds (vocabulary, widths,
    # layers, parameters) before transformers allocates a tensor: a 88 KB folder can declare 12.8 GB.
    hf_config = (SiglipConfig if siglip else CLIPConfig).from_pretrained(directory, local_files_only=True)
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    try:
        config = _model_config(hf_config, tokenizer, directory, siglip)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        raise ValueError(f"{directory.name}/config.json declares a model outside the artifact bounds ({problems}): "
                         "refused before anything was allocated") from None
    hf = (SiglipModel if siglip else CLIPModel).from_pretrained(directory, config=hf_config,
                                                                 local_files_only=True).eval()
    config = config.model_copy(update={"init_logit_scale": hf.logit_scale.item(),
                                       "init_logit_bias": hf.logit_bias.item() if siglip else None})
    model = DualEncoder(config)
    model.vision.load_state_dict(hf.vision_model.state_dict())
    model.text.load_state_dict(hf.text_model.state_dict())
    if not siglip:
        model.image_projection.load_state_dict(hf.visual_projection.state_dict())
        model.text_projection.load_state_dict(hf.text_projection.state_dict())
    with torch.no_grad():
        model.logit_scale.copy_(hf.logit_scale.reshape(()))
        if siglip:
            model.logit_bias.copy_(hf.logit_bias.reshape(()))
    lineage = Lineage(parent_model=f"huggingface:{directory.name}",
                      training={"imported_from": imported_from("hf", model_type, checkpoint_files(directory))})
    return ModelArtifact(model.eval(), CaptionTokenizer(tokenizer, config.tokenizer), lineage)


def checkpoint_files(directory: Path) -> dict[str, Path]:
    """The files that made the artifact (config, weights, tokenizer, preprocessing), by name."""
    weights = sorted(p.name for p in directory.iterdir()
                     if p.suffix == ".safetensors" or p.name.endswith(".safetensors.index.json"))
    used = ["config.json", "tokenizer.json", "preprocessor_config.json", *weights]
    return {name: directory / name for name in used}


def _model_config(hf_config, tokenizer: Tokenizer, directory: Path, siglip: bool) -> ModelConfig:
    """Our config of a checkpoint, from its declared shapes alone (bounded when it is made)."""
    text_config, vision_config = hf_config.text_config, hf_config.vision_config
    eos, pad = text_config.eos_token_id, text_config.pad_token_id
    sos = None if siglip else text_config.bos_token_id
    token_config = TokenizerConfig(
        vocab_size=text_config.vocab_size, context_length=text_config.max_position_embeddings, pad_id=pad,
        sos_id=sos, eos_id=eos, pad_token=tokenizer.id_to_token(pad), eos_token=tokenizer.id_to_token(eos),
        sos_token=None if sos is None else tokenizer.id_to_token(sos))
    return ModelConfig(
        family=hf_config.model_type, embed_dim=text_config.hidden_size if siglip else hf_config.projection_dim,
        vision=_tower_shape(vision_config, "siglip_vit" if siglip else "clip_vit", VisionTowerConfig),
        text=_tower_shape(text_config, hf_config.model_type, TextTowerConfig), tokenizer=token_config,
        projection=not siglip, **_preprocessing(directory, siglip))


def _preprocessing(directory: Path, siglip: bool) -> dict:
    default = ((0.5,) * 3, (0.5,) * 3) if siglip else (CLIP_MEAN, CLIP_STD)
    path = directory / "preprocessor_config.json"
    settings = json.loads(path.read_text()) if path.exists() else {}
    return {"image_mean": tuple(settings.get("image_mean", default[0])),
            "image_std": tuple(settings.get("image_std", default[1]))}
