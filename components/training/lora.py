"""LoRA on a dual encoder, through `peft`: adapters on both towers' attention and MLP layers, the backbone (the
projections and the logit scale included) frozen, and the adapters merged back at export so that the artifact,
the registry, serving and galleries see an ordinary model.

The adapters are injected in place: the model's own parameter names stay (a LoRA layer keeps its weight as
`<layer>.base_layer.weight`), so checkpoints resume and the merge finds every weight where it was.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraModel
from safetensors.torch import save_file

from components.config import LoraSettings
from components.models.dual_encoder import DualEncoder

ADAPTER = "default"  # peft's adapter name
ADAPTER_DIR = "adapter"  # in the run folder: the adapters alone (`adapter_model.safetensors`, as peft names it)


def lora_config(settings: LoraSettings) -> LoraConfig:
    """Only layers inside a tower's encoder: not a pooler or an attention-pool head (nor the projections,
    which are outside the towers)."""
    names = "|".join(re.escape(t) for t in settings.targets)
    return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=rf"encoder\..*\.({names})")


def add_lora(model: DualEncoder, settings: LoraSettings) -> list[LoraModel]:
    """Adapters into both towers (in place): only they train. peft adapts each tower, a `transformers` model,
    on its own; it returns its handles, which are no submodule of anything."""
    model.requires_grad_(False)
    return [_adapted(getattr(model, tower), tower, getattr(model.config, tower).kind, settings)
            for tower in ("vision", "text")]


def _adapted(tower: torch.nn.Module, which: str, kind: str, settings: LoraSettings) -> LoraModel:
    try:
        return LoraModel(tower, lora_config(settings), ADAPTER)
    except ValueError as error:
        if "not found" not in str(error):
            raise
        raise ValueError(f"LoRA targets {settings.targets} match no layer of the {which} tower's encoder ({kind}): "
                         "name its attention and MLP layers (CLIP: q_proj, fc1…; BERT: query, dense…)") from None


def merged(model: DualEncoder, settings: LoraSettings, state: dict[str, torch.Tensor]) -> DualEncoder:
    """`state` (a LoRA-trained model's weights, adapters included) loaded into `model` (a fresh one of the same
    config) and merged: each adapted weight becomes W + (alpha / rank) * B @ A, and the layers plain again."""
    tuners = add_lora(model, settings)
    model.load_state_dict(state)
    for tuner in tuners:
        tuner.merge_and_unload()  # in place: the tower object the model holds
    return model.requires_grad_(True)


def save_adapter(state: dict[str, torch.Tensor], settings: LoraSettings, directory: Path) -> Path:
    """The adapters alone, in peft's layout (`adapter_config.json`, `adapter_model.safetensors`): a few MB
    where the model is hundreds."""
    directory.mkdir(parents=True, exist_ok=True)
    adapters = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items() if "lora_" in name}
    save_file(adapters, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    lora_config(settings).save_pretrained(str(directory))
    return directory


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameters, and the bytes the trainable ones take with AdamW's two moments and a
    gradient (what LoRA saves)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total, "optimizer_state_bytes": trainable * 4 * 3}


def describe(counts: dict[str, int]) -> str:
    return (f"{counts['trainable_params']:,} of {counts['total_params']:,} parameters trainable "
            f"({counts['trainable_params'] / counts['total_params']:.2%}); gradients and AdamW state "
            f"{counts['optimizer_state_bytes'] / 2**20:.1f} MiB")
