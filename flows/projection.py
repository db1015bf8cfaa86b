"""Flow `project`: a registry version given a projection into an older version's embedding space, so its
queries search the galleries that version embedded before they are re-embedded (FCT / XBT).

Both backbones stay frozen: the train split's captions and images are embedded once by each model, the
projection is fitted on captions alone and then on image-text pairs, stored in a copy of the new artifact
as `compat/<name>-v<N>.safetensors`, and the copy goes through the candidate pipeline with the old model:
measured new->old through the projection, judged by the policy's compatibility rule, registered as the next
version with the compatibility record (its weights and its own space's figures are the new model's)."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, task

from components.compat.cross_model import one_caption_per_image
from components.compat.projection import fit_projection
from components.config import ValidationConfig
from components.data.reference import DatasetRef
from components.domains import domain, run_policy
from components.evaluation.gate import GatePolicy
from components.models.embedder import Embedder
from flows.steps.candidate import Candidate, Judged, dataset_target, measure, run_candidate_pipeline
from flows.steps.compatibility import OldSpace, old_space
from flows.steps.platform import Platform
from flows.validate_data import validate_data


@task
def fit(new_dir: str, old: OldSpace, train_target, out_dir: str, *, hidden: int, steps: int) -> dict[str, float]:
    """Fit the projection on the train split (captions, then pairs) and store it in the artifact at `out_dir`."""
    new_split, old_split = (train_target.encode(Embedder.load(Path(d))) for d in (new_dir, old.artifact_dir))
    projection, losses = fit_projection(new_split.text_emb.numpy(), old_split.text_emb.numpy(),
                                        pairs=one_caption_per_image(new_split, old_split), hidden=hidden, steps=steps)
    projection.save(Path(out_dir), old.space)
    return losses


@flow(name="project", log_prints=True)
def project(model: str, old: str, dataset: DatasetRef, *, hidden: int = 0, steps: int = 300,
            gate_policy: GatePolicy | str | None = None,
            validation: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
            ) -> Judged:
    """Give `model` (`name@alias`, `name:N`) a projection into `old`'s embedding space, fitted on `dataset`'s
    train split and judged on its test split; registered as the next version of `model`'s name."""
    platform, preset = Platform.from_env(), domain("general")
    policy = run_policy(gate_policy, preset)  # before any work
    registry = platform.registry()
    record = registry.resolve(model)
    old_version = old_space(registry, old, platform.old_models)
    validated = validate_data(dataset, validation)
    run_dir = platform.runs / f"project-{record.name}-v{record.version}-into-{old_version.space.replace(':', '-v')}"
    shutil.rmtree(run_dir, ignore_errors=True)
    artifact_dir = registry.download(record.name, record.version, run_dir / "artifact")
    tests = [dataset_target(preset, validated, "test")]
    # The parent measured on the same split before the projection joins its artifact: the gate's baseline.
    parent_metrics = measure(str(artifact_dir), tests, policy=policy).metrics
    losses = fit(str(artifact_dir), old_version, dataset_target(preset, validated, "train"), str(artifact_dir),
                 hidden=hidden, steps=steps)
    print(f"projection into {old_version.space} fitted: last losses {losses}")
    candidate = Candidate(name=record.name, artifact_dir=str(artifact_dir), parent=record.ref, old=old_version,
                          reason=f"{record.ref} with a projection into {old_version.space}",
                          training={"projection": {"into": old_version.space, "hidden": hidden, "steps": steps,
                                                   "losses": losses}})
    return run_candidate_pipeline(registry, candidate, tests, policy, parent=parent_metrics)
