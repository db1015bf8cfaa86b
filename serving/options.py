"""How a bento serves: batching and input limits, fixed when it is built (`alignops package`, the package
flow's form). A built bento's stored arguments win over `bentoml serve --arg` in BentoML 1.4, so a change
means packaging again. Kept apart from the service so that packaging does not import the service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.inputs import Limits


class ServingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batching: bool = Field(True, description="merge concurrent requests into one encoder call")
    max_batch_size: int = Field(64, ge=1, description="items in one encoder call")
    max_latency_ms: int = Field(10_000, ge=1, description="longest wait in the batch queue; past it a request "
                                                          "gets 503 (overloaded, retry)")
    front_workers: int = Field(0, ge=0, description="processes of the public service, which parses requests in "
                                                    "Python (a core each); 0: one per CPU core of the machine or "
                                                    "container")
    encoder_timeout_s: float = Field(15.0, gt=0, description="a call to the encoder past this is retried")
    limits: Limits = Field(default_factory=Limits)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the encoder runs the model; auto: "
                                                                       "a GPU when its machine has one")
    runtime: Literal["torch", "onnx"] = Field("torch", description="what runs the towers: PyTorch, or onnxruntime "
                                                                   "on the CPU over ONNX graphs exported at packaging")

    @model_validator(mode="after")
    def _onnx_on_cpu(self) -> ServingOptions:
        if self.runtime == "onnx" and self.device == "cuda":
            raise ValueError("the onnx runtime serves on the CPU here: package with device auto or cpu, or with "
                             "runtime torch for a GPU")
        return self

    def encoder_device(self) -> str:
        """The device for the model, on the machine that serves. On a GPU, matrix products and convolutions
        run in full fp32 (no TF32), so served embeddings keep matching the registry artifact's (the smoke
        test allows 1e-5)."""
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device cuda was asked for, but no CUDA device is visible to the encoder; "
                               "package with device auto or cpu, or serve the bento on a GPU node")
        if self.device == "cpu" or not torch.cuda.is_available():
            return "cpu"
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        return "cuda"


class ServiceArgs(ServingOptions):
    """The bento's arguments: the options and the BentoML model it serves."""

    model_tag: str = "alignops-model:latest"
