"""Package a model artifact: import it into the BentoML model store and build a bento around it."""

from __future__ import annotations

import shutil
from pathlib import Path

import bentoml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE = "serving.service:EmbeddingService"
# What the served code imports, for the bento's container image (see README: deploying a bento).
RUNTIME_PACKAGES = ["torch==2.13.0", "transformers>=5,<6", "tokenizers>=0.22", "safetensors>=0.5",
                    "pillow>=11", "numpy>=2", "pydantic>=2.9"]


def import_model(artifact_dir: Path, name: str, labels: dict[str, str]) -> str:
    """Copy the artifact into the BentoML model store, with lineage facts as labels; return its tag."""
    with bentoml.models.create(name, labels=labels) as model:
        shutil.copytree(artifact_dir, model.path, dirs_exist_ok=True)
    return str(model.tag)


def build_bento(model_tag: str, labels: dict[str, str]) -> str:
    """Build a bento serving `model_tag`; package locking is off (no public index is reachable here)."""
    bento = bentoml.bentos.build(
        SERVICE,
        args={"model_tag": model_tag},
        labels=labels,
        include=["serving/*.py", "components/**/*.py"],
        build_ctx=str(PROJECT_ROOT),
        python={"packages": RUNTIME_PACKAGES, "lock_packages": False},
        docker={"python_version": "3.11"},
    )
    return str(bento.tag)
