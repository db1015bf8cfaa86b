"""The architectures the parity tests make with open_clip: a small CLIP (QuickGELU, a config JSON and a
`.bin`), the real ViT-B-32 by name, and a SigLIP with timm's ViT-B/16 and a Hugging Face tokenizer, in
open_clip's hub layout."""

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


def run_reference(python: Path, *args: str) -> str:
    """The reference script in the interop environment; its output, or the test fails with its error."""
    done = subprocess.run([str(python), str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
