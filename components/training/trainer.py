"""Run a training job: tokenizer, model, Lightning Trainer with checkpoints, progress bar and loggers.

A run directory holds everything of one run; calling `train` again on the same directory resumes
from `checkpoints/last.ckpt`.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pandas as pd
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger

from components.config import TokenizerConfig, TrainConfig, preset
from components.data.datamodule import PairDataModule
from components.data.manifest import read_manifest
from components.data.transforms import ImageTransform
from components.models.artifact import Lineage, ModelArtifact, config_hash
from components.text.tokenizer import CaptionTokenizer, train_tokenizer
from components.training.module import ContrastivePretraining
from components.training.report import plot_loss_curves

# Lightning's own noise, which a user can do nothing about: an advert on every fit and a deprecation
# inside its pytree utilities.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


@dataclass
class TrainResult:
    artifact: ModelArtifact
    run_dir: Path
    loss_curve: Path
    resumed_from: Path | None
    wandb_run_id: str | None


def run_tokenizer(run_dir: Path, captions: list[str], config: TokenizerConfig) -> CaptionTokenizer:
    """Train the tokenizer once per run and reuse it on resume, so token ids never shift under a checkpoint."""
    directory = run_dir / "tokenizer"
    if (directory / "tokenizer.json").exists():
        return CaptionTokenizer.load(directory, config)
    tokenizer = train_tokenizer(captions, config)
    tokenizer.save(directory)
    return tokenizer


def train(config: TrainConfig, dataset_dir: Path, run_dir: Path, lineage: Lineage,
          exclude_sample_ids: frozenset[str] = frozenset()) -> TrainResult:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    manifest = read_manifest(dataset_dir)
    train_rows = manifest[(manifest["split"] == "train") & ~manifest["sample_id"].isin(exclude_sample_ids)]
    if len(train_rows) < config.batch_size:
        raise ValueError(f"{len(train_rows)} training rows in {dataset_dir} after excluding {len(exclude_sample_ids)} "
                         f"quarantined: fewer than one batch of {config.batch_size}")
    model_config = preset(config.preset)
    tokenizer = run_tokenizer(run_dir, train_rows["caption"].astype(str).tolist(), model_config.tokenizer)
    model_config.tokenizer.vocab_size = tokenizer.vocab_size
    transform = ImageTransform(model_config.vision.image_size, model_config.image_mean, model_config.image_std)
    data = PairDataModule(str(dataset_dir), tokenizer, transform, config.batch_size, config.num_workers,
                          exclude_sample_ids)
    module = ContrastivePretraining(model_config.model_dump(mode="json"), config.learning_rate,
                                    config.weight_decay, config.warmup_steps, config.max_steps)
    # One CSV log per attempt: Lightning's CSVLogger would overwrite the history of the interrupted attempt.
    attempt = len(list((run_dir / "logs").glob("attempt-*")))
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version=f"attempt-{attempt}")]
    if config.wandb:
        loggers.append(_wandb_logger(config, run_dir))
    trainer = L.Trainer(
        max_steps=config.max_steps, accelerator="auto", devices=1, logger=loggers, log_every_n_steps=10,
        val_check_interval=config.val_every_n_steps, check_val_every_n_epoch=None, num_sanity_val_steps=0,
        callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                                   every_n_train_steps=config.checkpoint_every_n_steps)],
        enable_model_summary=False, default_root_dir=run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_from = last if last.exists() else None
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resumed_from, weights_only=True)
    finally:
        wandb_run_id = _finish_wandb(loggers)
    lineage = lineage.model_copy(update={
        "config_hash": config_hash(model_config, config),
        "training": {**lineage.training, **config.model_dump(), "steps": trainer.global_step,
                     "wandb_run_id": wandb_run_id},
    })
    history = pd.concat([pd.read_csv(p) for p in sorted((run_dir / "logs").glob("attempt-*/metrics.csv"))])
    return TrainResult(ModelArtifact(module.model.eval(), tokenizer, lineage), run_dir,
                       plot_loss_curves(history, run_dir / "loss_curve.png"), resumed_from, wandb_run_id)


def _wandb_logger(config: TrainConfig, run_dir: Path) -> Logger:
    from lightning.pytorch.loggers import WandbLogger

    offline = os.environ.get("WANDB_MODE", "offline") != "online"
    return WandbLogger(project=config.wandb_project, save_dir=str(run_dir), offline=offline,
                       config=config.model_dump())


def _finish_wandb(loggers: list[Logger]) -> str | None:
    """Close the W&B run and its `wandb-core` service, which otherwise outlives `finish()`."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            run_id = logger.experiment.id
            wandb.finish()
            wandb.teardown()
            return run_id
    return None
