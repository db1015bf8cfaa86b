"""Flow `finetune_on_change`: finetune a domain only when its dataset's DVC version changed since the
last finetune (scheduled nightly, one deployment per domain)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from components.config import TrainConfig
from flows.finetune import FinetuneConfig, FinetuneResult, finetune
from flows.steps.datasets import materialise
from flows.steps.platform import Platform
from infra.workspace import DatasetVersion, VersioningError, dataset_version
from registry.registry import Registry


class WatchedDataset(BaseModel):
    domain: str = Field("medical", description="domain preset: medical, remote_sensing or person")
    dataset: str = Field(description="workspace path of the DVC-tracked domain dataset")
    general_dataset: str = Field("synthetic", description="workspace path of the general dataset (forgetting rule)")
    base_model: str = "general@production"
    model_name: str | None = Field(None, description="registry name of the result; default: the domain's name")
    train: TrainConfig = Field(default_factory=TrainConfig, description="laid over the preset's finetune recipe: "
                                                                        "the fields set here win")


def last_finetuned_on(registry: Registry, model: str, ref: str) -> str | None:
    """`name:version` of a registered version trained on dataset `ref`, if any."""
    if model not in registry.list_models():
        return None
    versions = registry.list_versions(model, include_archived=True)
    trained = [r for r in versions if r.lineage.datasets.get("train") == ref]
    return trained[-1].ref if trained else None


def newest_unlearnt(platform: Platform, dataset: str, model: str) -> DatasetVersion | None:
    """The newest version of workspace dataset `dataset`, where no version of `model` trained on it yet; else
    none, with the reason logged (not tracked, or already learnt)."""
    logger = get_run_logger()
    try:
        current = dataset_version(platform.open_workspace(), dataset)
    except VersioningError as error:
        logger.warning("nothing to learn: %s", error)
        return None
    if done := last_finetuned_on(platform.registry(), model, current.ref):
        logger.info("%s unchanged since %s was trained on it; skipping", current.ref, done)
        return None
    return current


@flow(name="finetune_on_change", log_prints=True)
def finetune_on_change(watched: WatchedDataset) -> FinetuneResult | None:
    """Skip when a version of the domain model was already trained on the dataset's newest revision."""
    logger, platform = get_run_logger(), Platform.from_env()
    model = watched.model_name or watched.domain
    if (current := newest_unlearnt(platform, watched.dataset, model)) is None:
        return None
    workspace = platform.workspace
    logger.info("%s is new: finetuning %s from %s", current.ref, model, watched.base_model)
    return finetune(FinetuneConfig(base_model=watched.base_model, domain=watched.domain,
                                   dataset=materialise(watched.dataset, workspace),
                                   general=materialise(watched.general_dataset, workspace),
                                   model_name=watched.model_name, train=watched.train))
