"""`alignops package`: a gallery, serving options and their defaults, inputs checked before a flow starts."""

import re

import pytest
from cli_invoke import invoke


@pytest.mark.slow
def test_package_with_a_gallery_and_serving_options(tiny_artifact, tiny_dataset, prefect_harness):
    import bentoml

    from flows.steps.platform import Platform

    registry = Platform.from_env().registry()
    version = registry.register("cli-packaged", tiny_artifact, reason="package CLI test").version
    result = invoke("package", f"cli-packaged:{version}", "--gallery", str(tiny_dataset), "--max-batch-size", "8",
                    "--max-latency-ms", "2500")
    assert result.exit_code == 0 and "smoke test passed" in result.output, result.output
    bento_tag = re.search(r"^(alignops-embedding:\w+): smoke test passed$", result.output, re.M).group(1)
    args = bentoml.get(bento_tag).info.args
    assert (args["max_batch_size"], args["max_latency_ms"], args["batching"]) == (8, 2500, True)
    (packaged,) = [e for e in registry.events("cli-packaged") if e.event == "packaged"]
    assert packaged.details == {"bento": bento_tag, "smoke_passed": True}


def test_package_refuses_a_gallery_that_is_not_a_dataset(tiny_artifact, tmp_path):
    from flows.steps.platform import Platform

    version = Platform.from_env().registry().register("cli-no-gallery", tiny_artifact, reason="test").version
    result = invoke("package", f"cli-no-gallery:{version}", "--gallery", str(tmp_path))
    assert result.exit_code == 1 and "no manifest.parquet in" in result.output
    result = invoke("package", f"cli-no-gallery:{version}", "--max-batch-size", "0")
    assert result.exit_code == 1 and "max_batch_size" in result.output and "Traceback" not in result.output


def test_package_help_states_the_serving_defaults():
    from serving.options import ServingOptions

    defaults = ServingOptions()
    help_text = " ".join(invoke("package", "--help").output.split())
    for name, shown in (("batching", "on" if defaults.batching else "off"), ("max_batch_size", defaults.max_batch_size),
                        ("max_latency_ms", defaults.max_latency_ms)):
        assert f"(default: {shown})" in help_text, name
