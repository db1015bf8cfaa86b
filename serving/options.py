"""How a bento serves: batching and input limits, fixed when it is built (`alignops package`, the package
flow's form). A built bento's stored arguments win over `bentoml serve --arg` in BentoML 1.4, so a change
means packaging again. Kept apart from the service so that packaging does not import the service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.inputs import Limits


class ServingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batching: bool = Field(True, description="merge concurrent requests into one encoder call")
    max_batch_size: int = Field(64, ge=1, description="items in one encoder call")
    max_latency_ms: int = Field(10_000, ge=1, description="longest wait in the batch queue; past it a request "
                                                          "gets 503 (overloaded, retry)")
    encoder_timeout_s: float = Field(15.0, gt=0, description="a call to the encoder past this is retried")
    limits: Limits = Field(default_factory=Limits)


class ServiceArgs(ServingOptions):
    """The bento's arguments: the options and the BentoML model it serves."""

    model_tag: str = "alignops-model:latest"
