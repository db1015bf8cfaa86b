"""Package a model artifact: import it into the BentoML model store (with a search gallery embedded
now) and build a bento around it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bentoml

from components.curation.works import ImageWork
from components.data.location import ImageRoot
from components.data.manifest import read_manifest
from components.evaluation.gallery import GALLERY_DIR, QUERY_SPACE_FILE, Gallery
from components.models.directory import ModelDirectory
from components.partitions.plan import IN_PROCESS, Runner
from registry.signing import TrustedKeys
from serving.options import ServiceArgs, ServingOptions
from serving.provenance import Provenance, pack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVICE = "serving.service:EmbeddingService"
# What the served code imports, for the bento's container image (see docs/operations.md: deploying a bento).
RUNTIME_PACKAGES = ["torch==2.13.0", "transformers>=5,<6", "tokenizers>=0.22", "safetensors>=0.5",
                    "pillow>=11", "numpy>=2", "faiss-cpu>=1.9,<2", "pandas>=2.2", "pyarrow>=17", "pydantic>=2.9",
                    # the start-up check of the version's signature, and the credential check on requests
                    "model-signing==1.1.1", "pyopenssl==26.4.0", "cryptography==50.0.2", "pyjwt==2.15.1"]

ONNX_PACKAGES = ["onnxruntime==1.32.0"]


def build_gallery(model: ModelDirectory, dataset_dir: Path, split: str = "test", *, images_at: str | None = None,
                  runner: Runner = IN_PROCESS) -> Gallery:
    """Embed a dataset split's images (read from `images_at`, else the dataset directory, by `runner`'s
    processes); each item carries its image_id, path and first caption."""
    rows = read_manifest(dataset_dir)
    rows = rows[rows["split"] == split]
    if rows.empty:
        raise ValueError(f"split {split!r} of {dataset_dir} has no rows to embed")
    images = rows.drop_duplicates("image_id")
    first_caption = rows.groupby("image_id", sort=False)["caption"].first()
    work = ImageWork(root=ImageRoot(root=images_at or str(dataset_dir)), model=model, perceptual=False)
    embedded = runner.map(work, images["image"].astype(str).tolist())
    items = [{"image_id": image_id, "image": path, "caption": str(first_caption[image_id])}
             for image_id, path in zip(images["image_id"], images["image"], strict=True)]
    return Gallery.build(embedded.embeddings, items)


def import_model(artifact_dir: Path, name: str, labels: dict[str, str], *, provenance: Provenance,
                 trusted: TrustedKeys, gallery: Gallery | None = None, query_space: str | None = None,
                 runtime: str = "torch") -> str:
    """Copy the downloaded version (files, record, signature; and the gallery) into the BentoML model store,
    lineage facts as labels, with what the bento verifies at start (`provenance`, the trusted keys). With
    `query_space`, the gallery lives in that older space and queries go through the artifact's projection
    into it (`compat/…`), which the service loads at start. For the onnx runtime, the towers are exported
    to ONNX beside the weights (`onnx/`)."""
    with bentoml.models.create(name, labels=labels) as model:
        shutil.copytree(artifact_dir, model.path, dirs_exist_ok=True)
        pack(Path(model.path), provenance, trusted)
        if runtime == "onnx":
            from components.interop.onnx import ONNX_DIR, export_onnx
            from components.models.artifact import ModelArtifact

            (Path(model.path) / ONNX_DIR).mkdir()
            export_onnx(ModelArtifact.load(artifact_dir), Path(model.path) / ONNX_DIR)
        if gallery is not None:
            gallery.save(Path(model.path) / GALLERY_DIR)
            (Path(model.path) / GALLERY_DIR / QUERY_SPACE_FILE).write_text(json.dumps({"space": query_space}))
    return str(model.tag)


def build_bento(model_tag: str, labels: dict[str, str], options: ServingOptions | None = None) -> str:
    """Build a bento serving `model_tag` with `options` (batching, limits) as its arguments; package
    locking is off (no public index is reachable here)."""
    bento = bentoml.bentos.build(
        SERVICE,
        args=ServiceArgs(model_tag=model_tag, **(options or ServingOptions()).model_dump()).model_dump(),
        labels=labels,
        include=["serving/*.py", "components/**/*.py", "registry/*.py", "core/*.py"],
        build_ctx=str(PROJECT_ROOT),
        python={"packages": RUNTIME_PACKAGES + (ONNX_PACKAGES if (options and options.runtime == "onnx") else []),
                "lock_packages": False},
        docker={"python_version": "3.11"},
    )
    return str(bento.tag)
