"""The towers as ONNX graphs (image and text encoders, dynamic batch), and onnxruntime running them.

An export folder holds `image_encoder.onnx`, `text_encoder.onnx` and `onnx.json` (opset, inputs, outputs and
each graph's sha256); with our `config.json` and `tokenizer/` beside them, it is everything a runtime needs.
A bento packaged with `--runtime onnx` carries such a folder inside the model and serves through it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.models.artifact import ModelArtifact
from components.models.dual_encoder import DualEncoder
from components.models.embedder import Embedder
from core.digest import sha256_file

OPSET = 17  # LayerNormalization is native from 17; every onnxruntime of the last three years runs it
IMAGE_FILE, TEXT_FILE, MANIFEST_FILE = "image_encoder.onnx", "text_encoder.onnx", "onnx.json"
ONNX_DIR = "onnx"  # inside a packaged model


class _Tower(nn.Module):
    def __init__(self, model: DualEncoder, image: bool):
        super().__init__()
        self.model, self.image = model, image

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(inputs) if self.image else self.model.encode_text(inputs)


def export_onnx(artifact: ModelArtifact, out: Path) -> list[Path]:
    """Both encoders as ONNX, normalised embeddings out, the batch dimension dynamic; `onnx.json` records
    the opset and each graph's digest."""
    import onnx

    model, config = artifact.model.eval(), artifact.config
    size = config.vision.image_size
    examples = {IMAGE_FILE: ("pixels", torch.zeros(2, 3, size, size)),
                TEXT_FILE: ("token_ids", artifact.tokenizer(["a photo of a dog", "two"]))}
    manifest: dict = {"opset": OPSET, "embed_dim": config.embed_dim, "torch": torch.__version__,
                      "onnx": onnx.__version__, "graphs": {}}
    for name, (input_name, example) in examples.items():
        with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation on every call
            warnings.simplefilter("ignore")
            torch.onnx.export(_Tower(model, name == IMAGE_FILE), (example,), str(out / name), dynamo=False,
                              input_names=[input_name], output_names=["embedding"], opset_version=OPSET,
                              dynamic_axes={input_name: {0: "batch"}, "embedding": {0: "batch"}})
        manifest["graphs"][name] = {"input": input_name, "shape": ["batch", *example.shape[1:]],
                                    "dtype": str(example.dtype).removeprefix("torch."), "output": "embedding",
                                    "sha256": sha256_file(out / name)}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return [out / IMAGE_FILE, out / TEXT_FILE, out / MANIFEST_FILE]


class OnnxEncoders:
    """The two graphs in onnxruntime sessions, each checked against the digest `onnx.json` recorded."""

    def __init__(self, directory: Path, threads: int = 0):
        import onnxruntime

        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default, one per core
        options.log_severity_level = 3
        self.sessions = {}
        for name, graph in manifest["graphs"].items():
            if name not in (IMAGE_FILE, TEXT_FILE) or sha256_file(directory / name) != graph["sha256"]:
                raise ValueError(f"{directory.name}/{name} is not the graph its onnx.json recorded: export again")
            self.sessions[name] = onnxruntime.InferenceSession(str(directory / name), options,
                                                               providers=["CPUExecutionProvider"])

    def encode_text(self, token_ids: torch.Tensor) -> np.ndarray:
        return self.sessions[TEXT_FILE].run(None, {"token_ids": token_ids.numpy()})[0]

    def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        return self.sessions[IMAGE_FILE].run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def onnx_embedder(artifact_dir: Path, batch_size: int = 256) -> Embedder:
    """An embedder over a packaged model's ONNX graphs (`onnx/` inside it): the artifact's tokenizer and
    preprocessing, the towers in onnxruntime (the PyTorch towers are not loaded)."""
    info = ModelArtifact.load_light(artifact_dir)
    return Embedder.with_encoders(info.config, info.tokenizer, info.logit_scale,
                                  OnnxEncoders(artifact_dir / ONNX_DIR), batch_size)
