"""WiSE-FT: mix base and finetuned weights, choosing the mix on validation data."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from prefect import get_run_logger, task
from pydantic import BaseModel
from safetensors.torch import load_file, save_file

from components.evaluation.gate import GatePolicy, evaluate_gate
from components.evaluation.suites import EvalTarget
from components.models.artifact import WEIGHTS_FILE
from flows.steps.candidate import measure

WISE_FT_MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)


class MixTrial(BaseModel):
    mix: float
    primary: float  # the preset's primary metric on the domain's validation split
    general: float  # general mean recall on the general validation split
    within_ceilings: bool = True  # no ceiling of the gate policy broken (its backdoor probe's ASR among them)


class MixChoice(BaseModel):
    artifact_dir: str
    mix: float
    trials: list[MixTrial]


def mix_weights(base_dir: Path, tuned_dir: Path, mix: float, out_dir: Path) -> Path:
    """(1 - mix) * base + mix * finetuned, tensor by tensor; the rest of the artifact is the tuned one."""
    shutil.copytree(tuned_dir, out_dir, dirs_exist_ok=True)
    base, tuned = load_file(str(base_dir / WEIGHTS_FILE)), load_file(str(tuned_dir / WEIGHTS_FILE))
    mixed = {k: tuned[k] if mix == 1 else torch.lerp(base[k], tuned[k], mix) for k in tuned}  # exact at 0 and 1
    save_file(mixed, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    return out_dir


def within_ceilings(policy: GatePolicy, metrics: dict[str, float]) -> bool:
    """No ceiling of the policy broken by a figure measured here; a ceiling on what validation does not
    measure (serving latency) is left to the gate."""
    ceilings = GatePolicy(name=policy.name, ceilings=policy.ceilings, backdoor=policy.backdoor)
    return all(rule.passed or rule.value is None for rule in evaluate_gate(ceilings, metrics).rules)


@task
def choose_mix(base_dir: str, tuned_dir: str, targets: list[EvalTarget], *, primary_metric: str,
               max_general_drop: float, out_dir: str, policy: GatePolicy | None = None) -> MixChoice:
    """The mix with the best domain metric on validation data among those within the forgetting limit
    (the least forgetting one when none is), and within the gate policy's ceilings: mixing a backdoored base
    back in brings its backdoor back, so with the policy's probe measured such a mix is never chosen
    while another stays under the ASR ceiling. `targets` are the domain's validation split and, where
    forgetting is watched, the general one. A mix whose embeddings are not finite is never chosen."""
    primary = f"{targets[0].name}/{primary_metric}"
    general = f"{targets[1].name}/mean_recall" if len(targets) > 1 else primary  # no general set: nothing to forget
    trials, dirs = [], {}
    for mix in WISE_FT_MIXES:
        candidate = mix_weights(Path(base_dir), Path(tuned_dir), mix, Path(out_dir) / f"mix-{mix}")
        measured = measure.fn(str(candidate), targets, policy=policy)
        if measured.refusal:
            get_run_logger().warning("WiSE-FT mix %s left out: %s", mix, measured.refusal)
            continue
        trials.append(MixTrial(mix=mix, primary=measured.metrics[primary], general=measured.metrics[general],
                               within_ceilings=policy is None or within_ceilings(policy, measured.metrics)))
        dirs[mix] = str(candidate)
    base_general = trials[0].general  # mix 0 is the base model, measured finite before training
    safe = [t for t in trials if t.within_ceilings] or trials  # none is: the gate says so
    within = [t for t in safe if t.general >= base_general - max_general_drop]
    best = max(within, key=lambda t: (t.primary, t.mix)) if within else max(safe, key=lambda t: t.general)
    return MixChoice(artifact_dir=dirs[best.mix], mix=best.mix, trials=trials)
