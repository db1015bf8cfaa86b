"""The wheels carried to a lent GPU machine are the versions this environment tests: a dependency upgraded
here without the list following would send the GPU suite other code than CI ran."""

import importlib.metadata
from pathlib import Path

WHEELS = Path(__file__).parents[3] / "infra" / "gpu" / "wheels.txt"


def test_the_carried_wheels_pin_the_tested_versions():
    pins = dict(line.split("==") for line in WHEELS.read_text().splitlines() if line and not line.startswith("#"))
    assert {"bentoml", "pydantic", "torchdata", "uv"} <= pins.keys()
    drifted = {name: (pinned, importlib.metadata.version(name)) for name, pinned in pins.items()
               if importlib.metadata.version(name) != pinned}
    assert not drifted, f"update infra/gpu/wheels.txt (pinned, installed): {drifted}"
