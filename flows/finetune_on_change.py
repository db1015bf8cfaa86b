"""Flow `finetune_on_change`: finetune a domain only when its dataset's DVC version changed since the
last finetune (scheduled nightly, one deployment per domain)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from components.config import TrainConfig
from flows.datasets import materialise
from flows.finetune import FinetuneConfig, FinetuneResult, finetune
from flows.settings import Platform
from infra.workspace import VersioningError, dataset_version


class WatchedDataset(BaseModel):
    domain: str = Field("medical", description="domain preset: medical, remote_sensing or person")
    dataset: str = Field(description="workspace path of the DVC-tracked domain dataset")
    general_dataset: str = Field("synthetic", description="workspace path of the general dataset (forgetting rule)")
    base_model: str = "general@production"
    model_name: str | None = Field(None, description="registry name of the result; default: the domain's name")
    train: TrainConfig | None = Field(None, description="overrides; default: the preset's steps, rate, objectives")


def last_finetuned_on(model: str, ref: str) -> str | None:
    """`name:version` of a registered version trained on dataset `ref`, if any."""
    registry = Platform.from_env().registry()
    if model not in registry.list_models():
        return None
    trained = [r for r in registry.list_versions(model, include_archived=True)
               if r.lineage.get("datasets", {}).get("train") == ref]
    return f"{model}:{trained[-1].version}" if trained else None


@flow(name="finetune_on_change", log_prints=True)
def finetune_on_change(watched: WatchedDataset) -> FinetuneResult | None:
    """Skip when a version of the domain model was already trained on the dataset's newest revision."""
    logger = get_run_logger()
    workspace = Platform.from_env().open_workspace()
    try:
        current = dataset_version(workspace, watched.dataset)
    except VersioningError as error:
        logger.warning("nothing to finetune: %s", error)
        return None
    model = watched.model_name or watched.domain
    if done := last_finetuned_on(model, current.ref):
        logger.info("%s unchanged since %s was trained on it; skipping", current.ref, done)
        return None
    logger.info("%s is new: finetuning %s from %s", current.ref, model, watched.base_model)
    ref, dvc_md5, dataset_dir = materialise(watched.dataset, workspace)
    _, _, general_dir = materialise(watched.general_dataset, workspace)
    return finetune(FinetuneConfig(base_model=watched.base_model, domain=watched.domain, dataset_dir=dataset_dir,
                                   dataset_version=ref, dataset_hash=dvc_md5,
                                   general_dataset_dir=general_dir, model_name=watched.model_name,
                                   train=watched.train))
