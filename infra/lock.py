"""The lock: every distribution of the tested environment at its exact version (`requirements.lock`), used as
constraints by the install step so that a fresh clone installs what CI tested, not what was released since.

`make lock` builds a new environment from `pyproject.toml` under `constraints.txt`, then writes its lock
with `python -m infra.lock`.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

LOCK = Path(__file__).parents[1] / "requirements.lock"
PROJECT = "alignops"
HEADER = ("# Every package of the environment CI tests, at its exact version: the install step's constraints.\n"
          "# Made by `make lock` (pyproject.toml resolved under constraints.txt); do not edit by hand.\n")


def canonical(name: str) -> str:
    """A distribution's name as the index compares names (PEP 503): `Pydantic_Core` is `pydantic-core`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """The distributions this interpreter sees, but the project itself; local version labels (`+cpu`) dropped,
    since `==2.13.0` already admits `2.13.0+cpu` and a label would pin one machine's build."""
    found = {canonical(d.metadata["Name"]): d.version.split("+", 1)[0] for d in importlib.metadata.distributions()}
    found.pop(PROJECT, None)
    return dict(sorted(found.items()))


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def read(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    return pins


if __name__ == "__main__":
    sys.stdout.write(render(installed()))
