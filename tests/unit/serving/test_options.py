"""How a bento serves: options validated at packaging, the encoder's device chosen where it serves."""

import pytest
import torch
from pydantic import ValidationError

from serving.options import ServiceArgs, ServingOptions


def test_the_encoder_device_is_the_cpu_here_and_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the CPU-only behaviour is what is checked here")
    assert ServingOptions().encoder_device() == ServingOptions(device="cpu").encoder_device() == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        ServingOptions(device="cuda").encoder_device()


def test_options_refuse_typos_and_impossible_values_and_round_trip_as_bento_arguments():
    with pytest.raises(ValidationError, match="max_batch_sise"):
        ServingOptions(max_batch_sise=8)
    with pytest.raises(ValidationError, match="max_latency_ms"):
        ServingOptions(max_latency_ms=0)
    options = ServingOptions(batching=False, max_batch_size=8, device="cpu")
    args = ServiceArgs(model_tag="m:1", **options.model_dump()).model_dump()
    assert ServiceArgs(**args) == ServiceArgs(model_tag="m:1", **options.model_dump())
