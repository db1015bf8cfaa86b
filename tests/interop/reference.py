"""The architectures the parity tests make with open_clip: a small CLIP (QuickGELU, a config JSON and a
`.bin`), the real ViT-B-32 by name, a SigLIP with timm's ViT-B/16 and a Hugging Face tokenizer in open_clip's
hub layout, and timm's CLIP ViT-B/32 paired with a `transformers` BERT text tower (MiniLM's shape and
tokenizer, known to open_clip by a hub name that a local Hugging Face cache answers)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).parent / "openclip_reference.py"

SMALL = {"embed_dim": 64, "quick_gelu": True,
         "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
# SigLIP's real image tower (timm's vit_base_patch16_siglip_224); a two-layer text tower over a small tokenizer.
SIGLIP = {"embed_dim": 768, "init_logit_bias": -10, "custom_text": True,
          "vision_cfg": {"image_size": 224, "timm_model_name": "vit_base_patch16_siglip_224",
                         "timm_model_pretrained": False, "timm_pool": "map", "timm_proj": "none"},
          "text_cfg": {"context_length": 64, "vocab_size": 2000, "hf_tokenizer_name": "local",
                       "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 768, "heads": 12, "layers": 2,
                       "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}}

PAIR_HUB_NAME = "alignops-test/minilm"
PAIR = {"embed_dim": 64,
        "vision_cfg": {"image_size": 224, "timm_model_name": "vit_base_patch32_clip_224",
                       "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": "linear"},
        "text_cfg": {"hf_model_name": PAIR_HUB_NAME, "hf_tokenizer_name": PAIR_HUB_NAME, "hf_model_pretrained": False,
                     "hf_proj_type": "linear", "hf_pooler_type": "mean_pooler", "context_length": 32}}
TEXT_TOWER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def hub_cache(folder: Path, name: str, hf_home: Path) -> Path:
    """A Hugging Face cache (HF_HOME) that answers `name` with `folder`'s config and tokenizer, offline."""
    import shutil

    revision = "0" * 40
    repo = hf_home / "hub" / f"models--{name.replace('/', '--')}"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for file in TEXT_TOWER_FILES:
        shutil.copy(folder / file, repo / "snapshots" / revision / file)
    return hf_home


def write_config(directory: Path, name: str, config: dict) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def siglip_tokenizer(captions: list[str], directory: Path) -> Path:
    """A SentencePiece-style tokenizer (Metaspace BPE, `</s>` ending and padding every text, as SigLIP's does)
    trained on the captions, saved as a Hugging Face tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tokenizer.train_from_iterator(captions * 20, trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                                                     special_tokens=["<pad>", "</s>", "<unk>"]))
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="</s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(directory)
    return directory


def run_reference(python: Path, *args: str, hf_home: Path | None = None) -> str:
    """The reference script in the interop environment; its output, or the test fails with its error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"} | ({"HF_HOME": str(hf_home)}
                                                                              if hf_home else {})
    done = subprocess.run([str(python), str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
