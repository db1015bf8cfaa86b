"""Exports in Hugging Face `transformers` form: a `CLIPModel` or `SiglipModel` folder (`save_pretrained`) with
its tokenizer and image processor, and the tokenizer files other exports carry."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, normalizers

from components.models.artifact import ModelArtifact

_FOLD = [normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
# Our text preprocessings as tokenizer normalisers, so the exported tokenizer cleans text as ours does; what
# they cannot do (ftfy's repair of broken Unicode, HTML entities; medical abbreviations) the model card names.
PREPROCESSING_NORMALIZERS = {
    "plain": [normalizers.Lowercase(), *_FOLD], "openclip_lower": [normalizers.Lowercase(), *_FOLD],
    "openclip_whitespace": _FOLD,
    "openclip_canonicalize": [normalizers.Replace("_", " "), normalizers.Replace(Regex(r"[!-/:-@\[-`{-~]"), ""),
                              normalizers.Lowercase(), *_FOLD]}


def fast_tokenizer(artifact: ModelArtifact):
    """Our tokenizer as a transformers fast tokenizer that adds the same start/end tokens and pads with the
    same id (padding and truncation to the context are the caller's, as transformers does it)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer.from_str(artifact.tokenizer.tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokens = artifact.config.tokenizer
    extra = PREPROCESSING_NORMALIZERS.get(tokens.preprocessing or "", [])
    if extra:
        tokenizer.normalizer = normalizers.Sequence(extra + ([tokenizer.normalizer] if tokenizer.normalizer else []))
    specials = {"pad_token": tokens.pad_token, "eos_token": tokens.eos_token} | (
        {"bos_token": tokens.sos_token} if tokens.sos_token else {})
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=tokens.context_length, **specials)


def save_hf_tokenizer(artifact: ModelArtifact, out: Path) -> list[Path]:
    before = set(out.iterdir())
    fast_tokenizer(artifact).save_pretrained(out)
    return sorted(set(out.iterdir()) - before)


def export_hf(artifact: ModelArtifact, out: Path) -> list[Path]:
    """`save_pretrained` of the transformers model our towers are, with tokenizer and image processor; a
    BERT text tower (MiniLM) is no part of CLIPModel or SiglipModel and is refused, naming it."""
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    config, model = artifact.config, artifact.model
    if config.text.kind == "bert":
        raise ValueError("the text tower is BERT (MiniLM), which transformers' CLIPModel and SiglipModel do not "
                         "hold: export it as onnx")
    siglip = config.family == "siglip" and config.vision.kind == "siglip_vit" and config.text.kind == "siglip"
    if not siglip and (config.vision.kind != "clip_vit" or config.text.kind != "clip" or not config.projection):
        raise ValueError(f"a {config.vision.kind} image tower with a {config.text.kind} text tower "
                         f"(projections {'on' if config.projection else 'off'}) is neither a CLIPModel nor a "
                         "SiglipModel: export it as onnx")
    towers = {"text_config": model.text.config.to_dict(), "vision_config": model.vision.config.to_dict()}
    hf = SiglipModel(SiglipConfig(**towers)) if siglip else \
        CLIPModel(CLIPConfig(**towers, projection_dim=config.embed_dim))
    hf.vision_model.load_state_dict(model.vision.state_dict())
    hf.text_model.load_state_dict(model.text.state_dict())
    with torch.no_grad():
        hf.logit_scale.copy_(model.logit_scale.reshape(hf.logit_scale.shape))
        if siglip:
            hf.logit_bias.copy_(model.logit_bias.reshape(hf.logit_bias.shape))
        else:
            hf.visual_projection.load_state_dict(model.image_projection.state_dict())
            hf.text_projection.load_state_dict(model.text_projection.state_dict())
    hf.save_pretrained(out)
    image_processor(artifact).save_pretrained(out)
    save_hf_tokenizer(artifact, out)
    return sorted(out.iterdir())


def image_processor(artifact: ModelArtifact):
    """The transformers image processor closest to our preprocessing: CLIP's shortest-side resize and centre
    crop, or SigLIP's squash (the padded fit of person crops has none: the card says so)."""
    from transformers import CLIPImageProcessor, SiglipImageProcessor

    config = artifact.config
    size, mean, std = config.vision.image_size, list(config.image_mean), list(config.image_std)
    if config.image_fit == "squash":
        return SiglipImageProcessor(size={"height": size, "width": size}, image_mean=mean, image_std=std,
                                    resample=3)
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              image_mean=mean, image_std=std, resample=3)
