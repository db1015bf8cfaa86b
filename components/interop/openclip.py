"""open_clip models as alignops towers, and back: configs read and written as open_clip's JSON, weights renamed
by the links of `mapping` (open_clip and timm are not imported: their torchvision does not load beside this
project's CPU torch, and the names are all a checkpoint needs).

What maps exactly (the rest is refused, naming the setting):

- CLIP: open_clip's own ViT image tower (or timm's CLIP ViT) and its causal text transformer pooled at the end
  token, with linear projections; GELU or QuickGELU;
- SigLIP: timm's SigLIP ViT (attention-pool head) and open_clip's text transformer without a causal mask, pooled
  at the last position through a biased projection; the logit bias.

Image preprocessing (size, mean, std, `shortest` or `squash` resize, bicubic) and the tokenizer (open_clip's
CLIP BPE, or a Hugging Face tokenizer, each with open_clip's text clean-up) come with the model.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from components.config import (
    CLIP_MEAN,
    CLIP_STD,
    HUB_NAME,
    ModelConfig,
    TextTowerConfig,
    TokenizerConfig,
    VisionTowerConfig,
)
from components.interop.clip_bpe import EOT, SOT, clip_bpe_tokenizer
from components.interop.hf import save_hf_tokenizer
from components.interop.mapping import Link, fused, same, to_ours, to_theirs
from components.interop.timm_vit import TimmVit, timm_name_of, timm_vit
from components.interop.weights import max_checkpoint_bytes, read_weights
from components.models.artifact import Lineage, ModelArtifact, imported_from
from components.models.dual_encoder import DualEncoder
from components.models.text_checkpoints import HUB_NAMES
from components.models.towers import build_text_tower
from components.text.tokenizer import CaptionTokenizer

CONFIG_FILE, WEIGHTS_FILE = "open_clip_config.json", "open_clip_model.safetensors"
WEIGHT_FILES = (WEIGHTS_FILE, "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
MAX_CONFIG_BYTES = 1 << 20
INCEPTION = (0.5, 0.5, 0.5)
ARCHITECTURE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")

# Settings of open_clip's towers that change what they compute, with the one value that maps onto ours
# (keys open_clip uses only in training, such as patch dropout, are ignored).
NATIVE_VISION = {"ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
                 "final_ln_after_pool": False, "pool_type": "tok", "block_type": None, "qk_norm": False,
                 "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False, "scale_attn": False,
                 "scale_fc": False, "act_kwargs": None, "norm_kwargs": None}
NATIVE_TEXT = {"ls_init_value": None, "embed_cls": False, "final_ln_after_pool": False, "proj_type": "linear",
               "block_type": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
               "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "act_kwargs": None,
               "tokenizer_mode": None, "hf_model_name": None}
TEXT_STYLES = {  # our text kind -> open_clip's settings for it
    "clip": {"no_causal_mask": False, "proj_bias": False},
    "siglip": {"no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}}
TIMM_VISION = {"timm_proj_bias": False}
SHAPE_KEYS = {"layers", "width", "head_width", "heads", "mlp_ratio", "patch_size", "image_size", "context_length",
              "vocab_size", "timm_model_name", "timm_pool", "timm_proj", "pool_type", "no_causal_mask", "proj_bias",
              "norm_kwargs", "hf_tokenizer_name", "hf_model_name", "tokenizer_kwargs", "eos_id", "pad_id"}
IGNORED_KEYS = {"patch_dropout", "output_tokens", "attn_pooler_queries", "attn_pooler_heads", "timm_model_pretrained",
                "timm_drop", "timm_drop_path", "hf_model_pretrained", "hf_proj_type", "hf_pooler_type"}
MODEL_KEYS = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu", "init_logit_scale", "init_logit_bias",
              "custom_text", "cast_dtype"}


@dataclass(frozen=True)
class OpenClipSource:
    """What an open_clip import reads: the model config, preprocessing, the weights file and the tokenizer."""

    architecture: str  # open_clip's name, or the config file's name
    model_cfg: dict
    preprocess_cfg: dict
    weights: Path
    tokenizer: Path | None  # CLIP's merges file, or a Hugging Face tokenizer directory
    config_file: Path | None  # where the config was read (for its digest)


def read_json(path: Path, what: str) -> dict:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path.name} is {path.stat().st_size} bytes, over the {MAX_CONFIG_BYTES}-byte limit of "
                         f"{what}")
    payload = json.loads(path.read_text())
    if not isinstance(payload, dict):
        raise ValueError(f"{path.name} is not a JSON object, so not {what}")
    return payload


def _openclip_package() -> Path | None:
    """open_clip's installed folder, found without importing it (its torchvision may not load here)."""
    spec = importlib.util.find_spec("open_clip")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def resolve_source(architecture: str, checkpoint: Path | None = None, tokenizer: Path | None = None,
                   package: Path | None = None) -> OpenClipSource:
    """ARCHITECTURE is a folder in open_clip's hub layout (`open_clip_config.json` and weights), a model config
    JSON, or a name from open_clip's configs (`package`: open_clip's installed folder, by default found)."""
    given = Path(architecture)
    if given.is_dir():
        if not (given / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{given.name} is a folder without {CONFIG_FILE}, so not in open_clip's hub layout")
        payload = read_json(given / CONFIG_FILE, "an open_clip config")
        weights = checkpoint or next((given / f for f in WEIGHT_FILES if (given / f).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"{given.name} holds no weights ({', '.join(WEIGHT_FILES)}): pass --checkpoint")
        model_cfg = payload.get("model_cfg", {})
        local_tokenizer = given if model_cfg.get("text_cfg", {}).get("hf_tokenizer_name") else None
        return OpenClipSource(given.name, model_cfg, payload.get("preprocess_cfg", {}), weights,
                              tokenizer or local_tokenizer or _packaged_bpe(package), given / CONFIG_FILE)
    if checkpoint is None:
        raise ValueError("pass the weights with --checkpoint FILE: nothing is downloaded")
    if given.suffix == ".json":
        payload = read_json(given, "an open_clip model config")
        model_cfg = payload.get("model_cfg", payload)
        return OpenClipSource(given.stem, model_cfg, payload.get("preprocess_cfg", {}), checkpoint,
                              tokenizer or _packaged_bpe(package), given)
    if not ARCHITECTURE.fullmatch(architecture):
        raise ValueError(f"{architecture!r} is neither a folder, a config JSON nor an open_clip architecture name")
    package = package or _openclip_package()
    found = package / "model_configs" / f"{architecture}.json" if package else None
    if found is None or not found.is_file():
        raise FileNotFoundError(f"no open_clip config named {architecture!r}"
                                + ("" if package else " (open_clip is not installed: `pip install alignops[openclip]`,"
                                   " or pass the model config JSON instead of the name)"))
    model_cfg = read_json(found, "an open_clip model config")
    return OpenClipSource(architecture, model_cfg, model_cfg.get("preprocess_cfg", {}), checkpoint,
                          tokenizer or _packaged_bpe(package), found)


def _packaged_bpe(package: Path | None) -> Path | None:
    package = package or _openclip_package()
    return package / BPE_FILE if package and (package / BPE_FILE).is_file() else None


def _check_settings(section: str, settings: dict, fixed: dict) -> None:
    """Refuse a setting whose value computes something our towers do not (naming it), and unknown settings."""
    for key, value in settings.items():
        if key in fixed:
            if value != fixed[key] and not (key == "block_type" and value == "default"):
                raise ValueError(f"open_clip's {section}.{key}={value!r} is not supported: alignops' towers compute "
                                 f"{section}.{key}={fixed[key]!r}")
        elif key not in SHAPE_KEYS | IGNORED_KEYS:
            raise ValueError(f"open_clip's {section}.{key} is not a setting alignops knows: refused rather than "
                             "ignored")


def _vision(model_cfg: dict) -> tuple[VisionTowerConfig, TimmVit | None]:
    v = model_cfg.get("vision_cfg", {})
    if v.get("timm_model_name"):
        _check_settings("vision_cfg", v, TIMM_VISION)
        timm = timm_vit(v["timm_model_name"])
        pool, proj = v.get("timm_pool", "avg"), v.get("timm_proj", "linear")
        wanted = ("map", "none") if timm.kind == "siglip" else ("token", "linear")
        if (pool, proj) != wanted or v.get("image_size", timm.tower.image_size) != timm.tower.image_size:
            raise ValueError(f"timm tower {timm.name} with timm_pool={pool!r}, timm_proj={proj!r}: alignops maps it "
                             f"with timm_pool={wanted[0]!r}, timm_proj={wanted[1]!r} at its own image size")
        return timm.tower, timm
    if isinstance(v.get("layers", 12), list | tuple):
        raise ValueError("open_clip's ResNet image towers (RN50 …) are not supported: alignops maps ViTs")
    _check_settings("vision_cfg", v, NATIVE_VISION)
    width = v.get("width", 768)
    act = "quick_gelu" if model_cfg.get("quick_gelu") else "gelu"
    return VisionTowerConfig(kind="clip_vit", image_size=v.get("image_size", 224), patch_size=v.get("patch_size", 16),
                             width=width, layers=v.get("layers", 12), heads=width // v.get("head_width", 64),
                             mlp_ratio=v.get("mlp_ratio", 4.0), hidden_act=act), None


HF_TEXT = {"hf_proj_type": "linear", "hf_pooler_type": "mean_pooler"}
# what our BERT tower is (towers.build_text_tower): anything else in the tower's config.json is refused
BERT = {"model_type": "bert", "position_embedding_type": "absolute", "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512}


def _text(model_cfg: dict, folder: Path | None) -> TextTowerConfig:
    t = model_cfg.get("text_cfg", {})
    if t.get("hf_model_name"):
        return _hf_text(t, folder)
    kind = "siglip" if t.get("no_causal_mask") else "clip"
    style = TEXT_STYLES[kind]
    _check_settings("text_cfg", {k: x for k, x in t.items() if k in style}, style)
    _check_settings("text_cfg", t, NATIVE_TEXT)
    if kind == "clip" and t.get("pool_type", "argmax") not in ("argmax", "eos"):
        raise ValueError(f"open_clip's text_cfg.pool_type={t['pool_type']!r} with a causal mask is not supported: "
                         "alignops' CLIP text tower pools at the end token")
    if kind == "clip" and t.get("norm_kwargs") not in (None, {"eps": 1e-5}):
        raise ValueError(f"open_clip's text_cfg.norm_kwargs={t['norm_kwargs']!r} is not supported (eps 1e-5)")
    act = "quick_gelu" if model_cfg.get("quick_gelu") and kind == "clip" else "gelu"
    return TextTowerConfig(kind=kind, width=t.get("width", 512), layers=t.get("layers", 12), heads=t.get("heads", 8),
                           mlp_ratio=t.get("mlp_ratio", 4.0), hidden_act=act)


def _hf_text(t: dict, folder: Path | None) -> TextTowerConfig:
    """A Hugging Face text tower inside open_clip: BERT, mean-pooled, with a linear projection."""
    # open_clip's own defaults where the config is silent (an MLP projection unless told otherwise)
    _check_settings("text_cfg", {"hf_proj_type": t.get("hf_proj_type", "mlp"),
                                 "hf_pooler_type": t.get("hf_pooler_type", "mean_pooler")}, HF_TEXT)
    _check_settings("text_cfg", {k: x for k, x in t.items() if k not in HF_TEXT}, {})
    bert = _bert_config(t["hf_model_name"], folder)
    name = t["hf_model_name"]
    return TextTowerConfig(kind="bert", width=bert["hidden_size"], layers=bert["num_hidden_layers"],
                           heads=bert["num_attention_heads"],
                           mlp_ratio=bert["intermediate_size"] / bert["hidden_size"], hidden_act=bert["hidden_act"],
                           hub_name=name if re.fullmatch(HUB_NAME, name) else None)


def _bert_config(name: str, folder: Path | None) -> dict:
    if folder is None or not folder.is_dir() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"this model's text tower is the Hugging Face model {name!r}: pass its local folder "
                                "(config.json and tokenizer) as --tokenizer; nothing is downloaded")
    bert = read_json(folder / "config.json", "a Hugging Face config") | {}
    found = {key: bert.get(key, value if key != "model_type" else None) for key, value in BERT.items()}
    if found != BERT:
        wrong = {k: v for k, v in found.items() if v != BERT[k]}
        raise ValueError(f"the text tower {folder.name}/config.json has {wrong}: alignops maps BERT towers with "
                         f"{ {k: BERT[k] for k in wrong} }")
    return bert


def tokenizer_of(source: OpenClipSource) -> tuple[Tokenizer, TokenizerConfig]:
    """The tokenizer open_clip would use for this model, with its clean-up, as a `tokenizers` tokenizer and
    our config of it."""
    t = source.model_cfg.get("text_cfg", {})
    kwargs = t.get("tokenizer_kwargs") or {}
    if set(kwargs) - {"clean"} or kwargs.get("strip_sep_token"):
        raise ValueError(f"open_clip tokenizer_kwargs {kwargs} are not supported (only `clean`)")
    context, vocab = t.get("context_length", 77), t.get("vocab_size", 49408)
    if t.get("hf_model_name"):
        vocab = _bert_config(t["hf_model_name"], source.tokenizer)["vocab_size"]
    if not t.get("hf_tokenizer_name"):
        if source.tokenizer is None or source.tokenizer.is_dir():
            raise FileNotFoundError(f"the CLIP tokenizer's merges file ({BPE_FILE}, shipped with open_clip) was not "
                                    "found: pass it with --tokenizer, or install alignops[openclip]")
        tokenizer = clip_bpe_tokenizer(source.tokenizer)
        ids = {name: tokenizer.token_to_id(token) for name, token in (("sos", SOT), ("eos", EOT))}
        return tokenizer, TokenizerConfig(vocab_size=vocab, context_length=context, pad_id=0, sos_id=ids["sos"],
                                          eos_id=ids["eos"], pad_token=tokenizer.id_to_token(0), sos_token=SOT,
                                          eos_token=EOT, preprocessing=f"openclip_{kwargs.get('clean', 'lower')}")
    if source.tokenizer is None or not source.tokenizer.is_dir() or not (source.tokenizer / "tokenizer.json").is_file():
        raise FileNotFoundError(f"this model uses the Hugging Face tokenizer {t['hf_tokenizer_name']!r}: pass its "
                                "local folder (with tokenizer.json) as --tokenizer; nothing is downloaded")
    return hf_tokenizer(source.tokenizer, vocab, context, f"openclip_{kwargs.get('clean', 'whitespace')}")


def hf_tokenizer(directory: Path, vocab_size: int, context_length: int, preprocessing: str | None
                 ) -> tuple[Tokenizer, TokenizerConfig]:
    """A Hugging Face tokenizer folder as ours: its start and end tokens are the ones it adds to a text, its
    padding token the one its config names."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if hf.pad_token_id is None:
        raise ValueError(f"the tokenizer in {directory.name} names no padding token")
    added = hf("")["input_ids"]
    if not added:
        raise ValueError(f"the tokenizer in {directory.name} adds no end token to a text; alignops' text towers "
                         "need one")
    sos = added[0] if len(added) == 2 else None
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    token = tokenizer.id_to_token
    return tokenizer, TokenizerConfig(vocab_size=vocab_size, context_length=context_length, pad_id=hf.pad_token_id,
                                      sos_id=sos, eos_id=added[-1], pad_token=token(hf.pad_token_id),
                                      sos_token=None if sos is None else token(sos), eos_token=token(added[-1]),
                                      preprocessing=preprocessing)


def model_config(source: OpenClipSource, tokens: TokenizerConfig, logit_scale: float,
                 logit_bias: float | None) -> ModelConfig:
    """Our config of an open_clip model, checked (and bounded) before any tensor is allocated."""
    unknown = set(source.model_cfg) - MODEL_KEYS - {"preprocess_cfg"}
    if unknown:
        raise ValueError(f"open_clip model settings {sorted(unknown)} are not supported (CoCa's decoder, "
                         "a non-scalar logit scale …): refused rather than ignored")
    vision, _ = _vision(source.model_cfg)
    text = _text(source.model_cfg, source.tokenizer)
    siglip = vision.kind == "siglip_vit"
    if siglip != (text.kind == "siglip"):
        raise ValueError(f"a {vision.kind} image tower with a {text.kind} text tower: alignops maps CLIP's pair "
                         "and SigLIP's pair")
    embed_dim = source.model_cfg.get("embed_dim", 512)
    if text.kind == "bert" and vision.kind != "clip_vit":
        raise ValueError("a Hugging Face text tower projects linearly; alignops pairs it with a CLIP ViT, not a "
                         "SigLIP one (whose tower does not project)")
    if siglip and not embed_dim == vision.width == text.width:
        raise ValueError(f"SigLIP towers of widths {vision.width}/{text.width} with embed_dim {embed_dim}: alignops "
                         "maps SigLIP towers whose widths are the embedding size")
    text_cfg = source.model_cfg.get("text_cfg", {})
    pooled_at = {"argmax": tokens.vocab_size - 1, "eos": text_cfg.get("eos_id", 2)}.get(
        text_cfg.get("pool_type", "argmax"))
    if text.kind == "clip" and pooled_at != tokens.eos_id:
        raise ValueError(f"open_clip pools this text tower at token id {pooled_at}, which is not the tokenizer's end "
                         f"token ({tokens.eos_id}): the tokenizer does not belong to this model")
    mean, std, fit = _preprocessing(source.preprocess_cfg, vision, siglip)
    return ModelConfig(family="siglip" if siglip else "clip", embed_dim=embed_dim, vision=vision, text=text,
                       tokenizer=tokens, image_mean=mean, image_std=std, image_fit=fit, reduced_decode=False,
                       projection=not siglip,
                       init_logit_scale=logit_scale, max_logit_scale=max(ModelConfig().max_logit_scale, logit_scale),
                       init_logit_bias=logit_bias)


def _preprocessing(cfg: dict, vision: VisionTowerConfig, siglip: bool) -> tuple[tuple, tuple, str]:
    """open_clip's preprocessing settings (SigLIP's defaults for SigLIP, OpenAI's otherwise, as open_clip's
    pretrained tags give them) as our mean, std and fit."""
    defaults = {"mean": INCEPTION, "std": INCEPTION, "resize_mode": "squash"} if siglip else \
        {"mean": CLIP_MEAN, "std": CLIP_STD, "resize_mode": "shortest"}
    cfg = defaults | {"interpolation": "bicubic", "size": vision.image_size} | cfg
    fits = {"shortest": "crop", "squash": "squash"}
    size = cfg["size"] if isinstance(cfg["size"], int) else tuple(cfg["size"])
    if cfg["resize_mode"] not in fits or cfg["interpolation"] != "bicubic" or size not in (
            vision.image_size, (vision.image_size,) * 2) or cfg.get("mode", "RGB") != "RGB":
        raise ValueError(f"open_clip preprocessing {cfg} is not supported: alignops resizes bicubic, by the "
                         f"shortest side or squashed, to the tower's {vision.image_size} pixels")
    return tuple(cfg["mean"]), tuple(cfg["std"]), fits[cfg["resize_mode"]]


def links(config: ModelConfig, timm: TimmVit | None, custom_text: bool) -> list[Link]:
    """Our state dict's names against open_clip's, for a model of `config`."""
    text_prefix = "text." if custom_text else ""
    vision = timm.links("vision.", "visual.trunk.") if timm else _native_vision(config.vision.layers)
    if timm and config.projection:
        vision.append(Link(("image_projection.weight",), ("visual.head.proj.weight",)))
    text = _hf_text_links(config) if config.text.kind == "bert" else _native_text_links(config, text_prefix)
    scale = [Link(("logit_scale",), ("logit_scale",))]
    if config.init_logit_bias is not None:
        scale.append(Link(("logit_bias",), ("logit_bias",)))
    return vision + text + scale


def _native_text_links(config: ModelConfig, prefix: str) -> list[Link]:
    text = [Link(("text.embeddings.token_embedding.weight",), (f"{prefix}token_embedding.weight",)),
            Link(("text.embeddings.position_embedding.weight",), (f"{prefix}positional_embedding",)),
            *_blocks(config.text.layers, "text.encoder.layers", f"{prefix}transformer.resblocks"),
            *same("text.final_layer_norm", f"{prefix}ln_final")]
    return text + (same("text.head", f"{prefix}text_projection") if config.text.kind == "siglip" else
                   [Link(("text_projection.weight",), (f"{prefix}text_projection",), "transpose")])


def _hf_text_links(config: ModelConfig) -> list[Link]:
    """open_clip's HFTextEncoder holds the transformers model under `text.transformer.` with its own names, and
    its linear projection as `text.proj`."""
    with torch.device("meta"):
        names = build_text_tower(config, load_pretrained=False).state_dict().keys()
    return [Link((f"text.{name}",), (f"text.transformer.{name}",)) for name in names] + \
        [Link(("text_projection.weight",), ("text.proj.weight",))]


def _native_vision(layers: int) -> list[Link]:
    return [Link(("vision.embeddings.patch_embedding.weight",), ("visual.conv1.weight",)),
            Link(("vision.embeddings.class_embedding",), ("visual.class_embedding",)),
            Link(("vision.embeddings.position_embedding.weight",), ("visual.positional_embedding",)),
            *same("vision.pre_layrnorm", "visual.ln_pre"),
            *_blocks(layers, "vision.encoder.layers", "visual.transformer.resblocks"),
            *same("vision.post_layernorm", "visual.ln_post"),
            Link(("image_projection.weight",), ("visual.proj",), "transpose")]


def _blocks(layers: int, ours: str, theirs: str) -> list[Link]:
    found = []
    for i in range(layers):
        mine, block = f"{ours}.{i}", f"{theirs}.{i}"
        found += [*same(f"{mine}.layer_norm1", f"{block}.ln_1"),
                  *fused(f"{mine}.self_attn", f"{block}.attn.in_proj_weight", f"{block}.attn.in_proj_bias"),
                  *same(f"{mine}.self_attn.out_proj", f"{block}.attn.out_proj"),
                  *same(f"{mine}.layer_norm2", f"{block}.ln_2"),
                  *same(f"{mine}.mlp.fc1", f"{block}.mlp.c_fc"), *same(f"{mine}.mlp.fc2", f"{block}.mlp.c_proj")]
    return found


def layout_of(source: OpenClipSource) -> tuple[TimmVit | None, bool]:
    """How the checkpoint holds the towers: a timm trunk or open_clip's own ViT; text under `text.` or not."""
    name = source.model_cfg.get("vision_cfg", {}).get("timm_model_name")
    hf_text = bool(source.model_cfg.get("text_cfg", {}).get("hf_model_name"))  # open_clip makes these custom
    return (timm_vit(name) if name else None), bool(source.model_cfg.get("custom_text")) or hf_text


def openclip_config(config: ModelConfig) -> tuple[dict, dict, TimmVit | None]:
    """open_clip's model config and preprocessing config of one of our models (for export)."""
    v = config.vision
    model: dict = {"embed_dim": config.embed_dim}
    timm = timm_vit(timm_name_of(v)) if v.kind == "siglip_vit" or v.timm_name else None
    if timm is not None:
        pool, proj = ("map", "none") if timm.kind == "siglip" else ("token", "linear")
        model["vision_cfg"] = {"image_size": v.image_size, "timm_model_name": timm.name,
                               "timm_model_pretrained": False, "timm_pool": pool, "timm_proj": proj}
    else:
        model["vision_cfg"] = {"image_size": v.image_size, "layers": v.layers, "width": v.width,
                               "head_width": v.width // v.heads, "mlp_ratio": v.mlp_ratio, "patch_size": v.patch_size}
    if config.text.kind == "bert":
        model["text_cfg"], model["custom_text"] = _hf_text_config(config), True
    else:
        model |= _native_text_config(config, vision_act=None if timm else v.hidden_act or "quick_gelu")
    if config.init_logit_bias is not None:
        model["init_logit_bias"] = config.init_logit_bias
    if config.tokenizer.sos_token != SOT:
        clean = (config.tokenizer.preprocessing or "").removeprefix("openclip_")
        model["text_cfg"]["hf_tokenizer_name"] = model["text_cfg"].get("hf_model_name", "alignops-tokenizer")
        model["text_cfg"]["tokenizer_kwargs"] = {  # the tokenizer is read from the export's own folder
            "clean": clean if clean in ("lower", "whitespace", "canonicalize") else
            "lower" if clean == "plain" else "whitespace"}
    resize = {"crop": "shortest", "squash": "squash", "pad": "longest"}[config.image_fit]
    preprocess = {"size": v.image_size, "mean": list(config.image_mean), "std": list(config.image_std),
                  "interpolation": "bicubic", "resize_mode": resize,
                  "fill_color": round(255 * config.image_mean[0])}
    return model, preprocess, timm


def _native_text_config(config: ModelConfig, vision_act: str | None) -> dict:
    """open_clip's text transformer settings (and the model's QuickGELU switch) for a CLIP or SigLIP text tower;
    `vision_act`: the activation of an open_clip-native image tower, which the switch sets too."""
    t, tokens = config.text, config.tokenizer
    act = t.hidden_act or ("gelu_pytorch_tanh" if t.kind == "siglip" else "quick_gelu")
    if act not in ("gelu", "quick_gelu") or (t.kind == "siglip" and act != "gelu"):
        raise ValueError(f"the text tower's activation {act!r} is not one open_clip's text transformer has "
                         "(GELU, or QuickGELU for CLIP): export it as hf or onnx")
    if vision_act is not None and vision_act != act:
        raise ValueError(f"open_clip gives both its CLIP towers one activation; these have {vision_act!r} and "
                         f"{act!r}: export it as hf or onnx")
    text = {"context_length": tokens.context_length, "vocab_size": tokens.vocab_size, "width": t.width,
            "heads": t.heads, "layers": t.layers, "mlp_ratio": t.mlp_ratio}
    if t.kind == "siglip":
        return {"custom_text": True, "text_cfg": text | TEXT_STYLES["siglip"]}
    if tokens.eos_id != tokens.vocab_size - 1:  # open_clip's default pools at the largest id (CLIP's end token)
        text |= {"pool_type": "eos", "eos_id": tokens.eos_id}
    return {"text_cfg": text} | ({"quick_gelu": True} if act == "quick_gelu" else {})


def _hf_text_config(config: ModelConfig) -> dict:
    """A BERT text tower as open_clip holds it: by its hub name, mean-pooled, projected linearly."""
    hub = config.text.hub_name or HUB_NAMES.get(config.text.pretrained or "")
    if hub is None:
        raise ValueError("the BERT text tower has no Hugging Face hub name, which open_clip needs to build it: "
                         "export it as onnx")
    return {"hf_model_name": hub, "hf_model_pretrained": False, **HF_TEXT,
            "context_length": config.tokenizer.context_length}


def import_openclip(source: OpenClipSource) -> ModelArtifact:
    """An open_clip checkpoint as a model artifact whose embeddings equal open_clip's forward."""
    tokenizer, tokens = tokenizer_of(source)
    bias = source.model_cfg.get("init_logit_bias")
    declared = model_config(source, tokens, ModelConfig().init_logit_scale, bias)  # bounded: nothing allocated yet
    weights = read_weights(source.weights, max_checkpoint_bytes(declared))
    if "logit_scale" not in weights or (bias is not None and "logit_bias" not in weights):
        raise ValueError(f"{source.weights.name} has no logit_scale{'/logit_bias' if bias is not None else ''}: "
                         "not an open_clip model's weights")
    config = model_config(source, tokens, float(weights["logit_scale"]),
                          None if bias is None else float(weights["logit_bias"]))
    timm, custom_text = layout_of(source)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in DualEncoder(config, load_pretrained=False).state_dict().items()}
    state = to_ours(links(config, timm, custom_text), weights, shapes, source.weights.name)
    model = DualEncoder(config, load_pretrained=False)
    model.load_state_dict(state, strict=True)
    files = {"weights": source.weights, "config": source.config_file} | (
        {"tokenizer": source.tokenizer / "tokenizer.json" if source.tokenizer.is_dir() else source.tokenizer}
        if source.tokenizer else {})
    lineage = Lineage(parent_model=f"open_clip:{source.architecture}",
                      training={"imported_from": imported_from("open_clip", source.architecture,
                                                               {k: v for k, v in files.items() if v})})
    return ModelArtifact(model.eval(), CaptionTokenizer(tokenizer, tokens), lineage)


def export_openclip(artifact: ModelArtifact, out: Path) -> list[Path]:
    """open_clip's hub layout in `out`: `open_clip_config.json`, `open_clip_model.safetensors` and, for a
    tokenizer other than CLIP's, its files; `open_clip.create_model_and_transforms('local-dir:OUT')` loads it."""
    model_cfg, preprocess, timm = openclip_config(artifact.config)
    theirs = to_theirs(links(artifact.config, timm, custom_text=bool(model_cfg.get("custom_text"))),
                       artifact.model.state_dict())
    save_file(theirs, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2))
    written = [out / WEIGHTS_FILE, out / CONFIG_FILE]
    if "hf_tokenizer_name" in model_cfg["text_cfg"]:
        written += save_hf_tokenizer(artifact, out)
    return written
