"""Domain presets, one file each: readers, text preprocessing, augmentation, objectives, metrics, gate."""

from components.domains.base import DomainPreset
from components.domains.medical import MEDICAL
from components.domains.person import PERSON
from components.domains.remote_sensing import REMOTE_SENSING

DOMAINS: dict[str, DomainPreset] = {d.name: d for d in (MEDICAL, REMOTE_SENSING, PERSON)}


def domain(name: str) -> DomainPreset:
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {sorted(DOMAINS)}")
    return DOMAINS[name]


__all__ = ["DOMAINS", "DomainPreset", "domain"]
