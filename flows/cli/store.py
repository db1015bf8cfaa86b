"""The registry every CLI command talks to, opened from the environment (one place, imported by each group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.registry import Registry


def registry() -> Registry:
    from flows.steps.platform import Platform

    return Platform.from_env().registry()
