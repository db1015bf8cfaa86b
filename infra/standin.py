"""A small random Hugging Face CLIP or SigLIP saved as a download would be (`config.json`, `model.safetensors`,
`tokenizer.json`): nothing loads from a model hub on these machines, so this stands in for a pretrained
checkpoint in the tests and the documentation's walkthroughs."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

from components.config import preset
from components.data.manifest import read_manifest
from components.text.tokenizer import CaptionTokenizer, train_tokenizer


def save_standin_checkpoint(kind: str, directory: Path, dataset: Path) -> tuple[torch.nn.Module, CaptionTokenizer]:
    """A `kind` ("clip" or "siglip") checkpoint in `directory`, its tokenizer trained on `dataset`'s captions."""
    config = preset("tiny")
    tokenizer = train_tokenizer(read_manifest(dataset)["caption"], config.tokenizer)
    text = dict(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8)
    torch.manual_seed(0)
    if kind == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=48))
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        with torch.no_grad():
            model.logit_bias.fill_(-7.5)
    model.save_pretrained(directory)
    tokenizer.tokenizer.save(str(Path(directory) / "tokenizer.json"))
    return model.eval(), tokenizer
