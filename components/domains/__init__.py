"""Presets, one file each: readers, text preprocessing, augmentation, objectives, metrics, gate. `general`
is one of them; `DOMAINS` are the specialised ones (each has a nightly finetune and a demo finetune)."""

from pathlib import Path

from components.domains.base import POLICIES, DomainPreset
from components.domains.general import GENERAL
from components.domains.medical import MEDICAL
from components.domains.person import PERSON
from components.domains.remote_sensing import REMOTE_SENSING
from components.evaluation.gate import GatePolicy

PRESETS: dict[str, DomainPreset] = {d.name: d for d in (GENERAL, MEDICAL, REMOTE_SENSING, PERSON)}
DOMAINS: dict[str, DomainPreset] = {name: d for name, d in PRESETS.items() if name != GENERAL.name}


def domain(name: str) -> DomainPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]


def policy_named(name: str | None) -> GatePolicy | None:
    """The shipped gate policy called `name` (a verdict records its policy's name), if one is."""
    return next((p for p in map(GatePolicy.from_yaml, sorted(POLICIES.glob("*.yaml"))) if p.name == name), None)


def run_policy(spec: GatePolicy | str | None, preset: DomainPreset) -> GatePolicy:
    """The one place a run's policy is chosen, first thing in every flow that judges: `spec` (one already
    loaded where the run started, or see `policy_from`), else the preset's."""
    if isinstance(spec, GatePolicy):
        return spec
    return policy_from(spec) if spec else preset.policy()


def policy_from(spec: str) -> GatePolicy:
    """`spec` names a shipped policy (`general`, `synthetic`, `medical`…) or a YAML policy file."""
    shipped = policy_named(spec)
    if shipped is not None:
        return shipped
    if not Path(spec).is_file():
        raise ValueError(f"gate policy {spec!r} is neither a shipped policy ({', '.join(shipped_policies())}) nor a "
                         "YAML file")
    return GatePolicy.from_yaml(Path(spec))


def shipped_policies() -> list[str]:
    return sorted(GatePolicy.from_yaml(path).name for path in POLICIES.glob("*.yaml"))


__all__ = ["DOMAINS", "PRESETS", "DomainPreset", "domain", "policy_from", "policy_named", "run_policy",
           "shipped_policies"]
