"""The install is reproducible: the lock pins every package the project needs, the install step applies it,
and the wheels carried to a lent GPU machine are the lock's versions (the code CI tested)."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from infra import lock

ROOT = Path(__file__).parents[3]
WHEELS = ROOT / "infra" / "gpu" / "wheels.txt"


def test_the_carried_wheels_pin_the_locked_versions():
    pins = {lock.canonical(name): version for name, version in
            (line.split("==") for line in WHEELS.read_text().splitlines() if line and not line.startswith("#"))}
    assert {"bentoml", "pydantic", "torchdata", "uv"} <= pins.keys()
    locked = lock.read()
    drifted = {name: (pinned, locked.get(name)) for name, pinned in pins.items() if locked.get(name) != pinned}
    assert not drifted, f"update infra/gpu/wheels.txt to requirements.lock (carried, locked): {drifted}"


def test_the_lock_pins_every_dependency_of_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    locked = lock.read()
    missing = [str(r) for r in wanted if lock.canonical(r.name) not in locked]
    assert not missing, f"requirements.lock lacks {missing}: run `make lock`"
    outside = {r.name: locked[lock.canonical(r.name)] for r in wanted
               if not r.specifier.contains(locked[lock.canonical(r.name)], prereleases=True)}
    assert not outside, f"locked versions outside pyproject.toml's ranges {outside}: run `make lock`"


def test_the_environment_is_the_locked_one():
    """What the install step made: every locked package this environment holds is at the locked version."""
    locked = lock.read()
    installed = lock.installed()
    drifted = {name: (version, installed[name]) for name, version in locked.items()
               if name in installed and installed[name] != version}
    assert not drifted, f"installed without the lock (locked, installed): {drifted}; run `make clean test`"
    assert lock.render(locked) == lock.LOCK.read_text()  # sorted, canonical, nothing by hand
