"""Presets, one file each: readers, text preprocessing, augmentation, objectives, metrics, gate. `general`
is one of them; `DOMAINS` are the specialised ones (each has a nightly finetune and a demo finetune)."""

from components.domains.base import DomainPreset
from components.domains.general import GENERAL
from components.domains.medical import MEDICAL
from components.domains.person import PERSON
from components.domains.remote_sensing import REMOTE_SENSING

PRESETS: dict[str, DomainPreset] = {d.name: d for d in (GENERAL, MEDICAL, REMOTE_SENSING, PERSON)}
DOMAINS: dict[str, DomainPreset] = {name: d for name, d in PRESETS.items() if name != GENERAL.name}


def domain(name: str) -> DomainPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def policy_named(name: str | None):
    """The shipped gate policy called `name` (a verdict records its policy's name), if one is."""
    return next((p.policy() for p in PRESETS.values() if p.policy_file.is_file() and p.policy().name == name), None)


__all__ = ["DOMAINS", "PRESETS", "DomainPreset", "domain", "policy_named"]
