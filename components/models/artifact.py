"""The model artifact: one self-contained directory, the same bytes from training to registry to bento.

    model.safetensors   weights (no pickle)
    config.json         ModelConfig
    tokenizer/          tokenizer.json
    lineage.json        dataset versions, code revision, config hash, parent model, metrics
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from components.config import ModelConfig
from components.models.dual_encoder import DualEncoder
from components.text.tokenizer import CaptionTokenizer

WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_DIR, LINEAGE_FILE = "model.safetensors", "config.json", "tokenizer", "lineage.json"


class Lineage(BaseModel):
    """Where a model came from: enough to reproduce it and to answer "what was it trained on?"."""

    datasets: dict[str, str] = Field(default_factory=dict, description="role -> dataset reference `path@rev`")
    dataset_hashes: dict[str, str] = Field(default_factory=dict, description="role -> DVC hash of the dataset")
    code_revision: str | None = None
    config_hash: str | None = None
    parent_model: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    metric_intervals: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="metric -> its 95% interval (low, high) and number of queries (n)")
    training: dict[str, Any] = Field(default_factory=dict)


def imported_from(format_: str, architecture: str, files: dict[str, Path]) -> dict:
    """Where an imported model came from, as its lineage's `training.imported_from` records it: format,
    architecture and each file's sha256 by name, never the importing machine's path."""
    from core.digest import sha256_file

    return {"format": format_, "architecture": architecture,
            "files": {name: sha256_file(path) for name, path in files.items() if path.is_file()}}


def config_hash(*configs: BaseModel) -> str:
    payload = json.dumps([c.model_dump(mode="json") for c in configs], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class ArtifactInfo:
    """An artifact without its towers: enough to tokenize, preprocess and scale logits."""

    config: ModelConfig
    tokenizer: CaptionTokenizer
    lineage: Lineage
    logit_scale: float


@dataclass
class ModelArtifact:
    model: DualEncoder
    tokenizer: CaptionTokenizer
    lineage: Lineage

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        (directory / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2))
        self.tokenizer.save(directory / TOKENIZER_DIR)
        (directory / LINEAGE_FILE).write_text(self.lineage.model_dump_json(indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> ModelArtifact:
        info = cls.load_light(directory)
        model = DualEncoder(info.config, load_pretrained=False)
        model.load_state_dict(load_file(str(Path(directory) / WEIGHTS_FILE)), strict=True)
        return cls(model.eval(), info.tokenizer, info.lineage)

    @staticmethod
    def load_light(directory: Path) -> ArtifactInfo:
        """Config, tokenizer, lineage and logit scale, without building the towers."""
        directory = Path(directory)
        missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_DIR, LINEAGE_FILE) if not (directory / f).exists()]
        if missing:
            raise FileNotFoundError(f"{directory} is not a model artifact: missing {missing}")
        config = ModelConfig.model_validate_json((directory / CONFIG_FILE).read_text())
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as weights:
            logit_scale = float(weights.get_tensor("logit_scale").exp())
        return ArtifactInfo(config, CaptionTokenizer.load(directory / TOKENIZER_DIR, config.tokenizer),
                            Lineage.model_validate_json((directory / LINEAGE_FILE).read_text()), logit_scale)
