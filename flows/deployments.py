"""Every deployment of the platform, declared once: the local stack applies them to a process work pool,
a cluster to a Kubernetes pool (`alignops deploy --pool ... --image ...`).

Entrypoints are module paths (`flows.pretrain:pretrain`), so a worker runs whatever alignops is
installed beside it: the virtual environment locally, the image on Kubernetes. Parameters are typed
(pydantic), so the Prefect UI renders a form for each.
"""

from __future__ import annotations

from typing import Any

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import EntrypointType, RunnerDeployment, deploy
from prefect.events import DeploymentEventTrigger
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

from components.domains import DOMAINS
from flows.audit import audit_backdoor
from flows.continual import continual, continual_on_change
from flows.curate import curate
from flows.evaluate import evaluate
from flows.export_model import export_model
from flows.finetune import finetune
from flows.finetune_on_change import finetune_on_change
from flows.gallery import build_gallery
from flows.import_checkpoint import import_checkpoint
from flows.lifecycle import lifecycle
from flows.package import package
from flows.pretrain import pretrain
from flows.projection import project
from flows.promote import promote, rollback
from flows.reevaluate import reevaluate
from flows.shard_dataset import shard_dataset
from flows.steps.candidate import ALIAS_MOVED, PACKAGE_ON_MOVE
from flows.upgrade import REEMBED_DEPLOYMENT, reembed_gallery, rollback_upgrade, upgrade
from flows.validate_data import validate_data
from flows.version_dataset import DATASET_PATH, DATASET_VERSIONED, version_dataset

APPROVAL_WAIT_S = 86_400  # how long a promotion started from the UI or a schedule waits for its approvals

NIGHTLY = "0 2 * * *"  # 02:00 every day
WEEKLY = "0 3 * * 1"  # 03:00 every Monday
PACKAGE_ON_PRODUCTION = "package new production versions"
CONTINUAL_DATA = "continual-data/dataset"  # the workspace dataset the shipped continual stream learns from


def new_version_of(dataset: str) -> DeploymentEventTrigger:
    """Run a deployment each time `version_dataset` versions `dataset` (a path in the workspace)."""
    return DeploymentEventTrigger(name=f"new version of {dataset}", expect={DATASET_VERSIONED},
                                  match={DATASET_PATH: dataset},
                                  description=f"When a new DVC version of {dataset} is pushed, learn it.")


def package_on_production() -> DeploymentEventTrigger:
    """Run `package` for the version that `production` now points at, whoever moved it (but for a mover
    that packages it itself: the lifecycle flow)."""
    return DeploymentEventTrigger(
        name=PACKAGE_ON_PRODUCTION, expect={ALIAS_MOVED},
        match={"alignops.alias": "production", PACKAGE_ON_MOVE: "true"},
        parameters={"model_ref": "{{ event.payload.model }}:{{ event.payload.version }}"},
        description="When promote or rollback moves a `production` alias, package that version.")


def deployments(job_variables: dict[str, Any] | None = None) -> list[RunnerDeployment]:
    common = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": ["alignops"],
              "job_variables": job_variables or {}}
    on_demand = [
        validate_data.to_deployment("validate-data", description="Validate a dataset version.", **common),
        pretrain.to_deployment("pretrain", description="Pretrain on a validated dataset.", **common),
        continual.to_deployment("continual", description="Update a model phase after phase on dataset versions "
                                                         "and measure what it remembers (a retention matrix).",
                                **common),
        continual_on_change.to_deployment("continual-on-new-version", description="One more continual phase "
                                          f"each time {CONTINUAL_DATA} gets a new version.",
                                          triggers=[new_version_of(CONTINUAL_DATA)],
                                          parameters={"stream": {"dataset": CONTINUAL_DATA}}, **common),
        finetune.to_deployment("finetune", description="Adapt a registry version (an imported checkpoint too) to "
                                                       "a team's data or a domain.", **common),
        evaluate.to_deployment("evaluate", description="Measure a registry version or artifact on a dataset's "
                                                       "split and judge it; recorded on the version.", **common),
        promote.to_deployment("promote", description="Move an alias to a version with a passing gate; where the "
                              "access policy wants approvals, the run waits (a day) for one in the UI.",
                              parameters={"approval_wait_s": APPROVAL_WAIT_S}, **common),
        rollback.to_deployment("rollback", description="Move an alias back to its previous holder.", **common),
        audit_backdoor.to_deployment("audit-backdoor", description="Measure a model's attack success rate for a "
                                                                   "trigger beside its clean accuracy.", **common),
        curate.to_deployment("curate", description="Filter a dataset by a model's pair scores, de-duplicate it and "
                                                   "clear leakage into eval data, as a new dataset version.",
                             **common),
        version_dataset.to_deployment("version-dataset", description="Track a workspace dataset with DVC and "
                                                                     "push it; optionally list it as an eval set.",
                                      **common),
        import_checkpoint.to_deployment("import-checkpoint", description="Register a Hugging Face or open_clip "
                                                                         "checkpoint as a new version.", **common),
        export_model.to_deployment("export-model", description="Write a version out as open_clip, transformers or "
                                                               "ONNX with a model card, to a folder or s3:// prefix.",
                                   **common),
        package.to_deployment("package", description="Build and smoke-test a bento of a version; runs by itself "
                                                     "when `production` moves.", triggers=[package_on_production()],
                              **common),
        lifecycle.to_deployment("lifecycle", description="Validate, pretrain, evaluate, register, promote, package.",
                                **common),
        shard_dataset.to_deployment("shard-dataset", description="Write a dataset as WebDataset tar shards, one "
                                                                 "shard a partition on a cluster.", **common),
        build_gallery.to_deployment("build-gallery", description="Embed a dataset split with a version and register "
                                                                 "it as a gallery version.", **common),
        project.to_deployment("project", description="Fit a projection from a version's embedding space into an "
                                                     "older one's and register it with its compatibility record.",
                              **common),
        upgrade.to_deployment("upgrade", description="Make a version the query model of a gallery's serving pair: "
                                                     "at once where compatible (the gallery then re-embedded in "
                                                     "the background), else after a shadow re-embed compared on "
                                                     "probes.", parameters={"background": True}, **common),
        reembed_gallery.to_deployment(REEMBED_DEPLOYMENT.split("/")[1], description="Re-embed a served gallery by "
                                      "its new query model; the new version takes the pair over where its probes "
                                      "hold.", **common),
        rollback_upgrade.to_deployment("rollback-upgrade", description="Put a gallery's serving pair and its "
                                                                       "model's alias back together.", **common),
    ]
    scheduled = [
        reevaluate.to_deployment("weekly-production", cron=WEEKLY, parameters={"model_ref": "general@production"},
                                 description="Re-measure general@production on every eval set.", **common),
        *(finetune_on_change.to_deployment(
            f"nightly-{name}", cron=NIGHTLY, description=f"Finetune {name} when its dataset's version changed.",
            parameters={"watched": {"domain": name, "dataset": f"{name}-data/dataset"}}, **common)
          for name in sorted(DOMAINS)),
    ]
    return on_demand + scheduled


async def ensure_process_pool(name: str) -> None:
    """Create the process work pool `name` unless it exists."""
    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(
                name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template()))
        except ObjectAlreadyExists:
            pass


async def require_pool(name: str) -> None:
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
        except ObjectNotFound:
            raise ValueError(f"no work pool {name!r} on {client.api_url}: create it first, e.g. `prefect work-pool "
                             f"create {name} --type kubernetes --base-job-template "
                             "infra/kubernetes/work-pool.json`") from None


def apply_deployments(pool: str, job_variables: dict[str, Any] | None = None) -> list[str]:
    """Create or update every deployment on work pool `pool` of the configured Prefect API; returns their
    names (`flow/deployment`)."""
    items = deployments(job_variables)
    deploy(*items, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
           ignore_warnings=True)
    return [f"{d.flow_name}/{d.name}" for d in items]
