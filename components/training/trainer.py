"""Run a training job: tokenizer, model, Lightning Trainer with checkpoints, progress bar and loggers.

A run directory holds everything of one run; calling `train` again on the same directory resumes
from `checkpoints/last.ckpt`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import fsspec
import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.strategies import DDPStrategy, Strategy
from lightning.pytorch.trainer.states import TrainerStatus
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from components.config import (
    ModelConfig,
    ModelSection,
    OptimSection,
    ScaleSection,
    TokenizerConfig,
    TrainConfig,
    preset,
)
from components.data.datamodule import PairDataModule
from components.data.manifest import read_manifest
from components.data.transforms import ImageTransform
from components.models.artifact import Lineage, ModelArtifact, config_hash
from components.models.dual_encoder import DualEncoder
from components.models.pretrained import with_pretrained_text
from components.text.tokenizer import CaptionTokenizer, train_tokenizer
from components.training.job import TrainingJob
from components.training.module import ContrastivePretraining
from components.training.plots import plot_loss_curves
from components.training.progress import ProgressLines, Report
from components.training.sharding import PREVIOUS, ShardedCheckpoints, is_sharded
from core.containment import without_local_paths
from core.secrets import redacted

# Lightning's own noise, which a user can do nothing about: an advert on every fit and a deprecation
# inside its pytree utilities.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: "litlogger" not in r.getMessage())
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
warnings.filterwarnings("ignore", message=r".*'set_vital' is deprecated.*")  # torchdata's, once per epoch
warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")  # small data: epochs are short


@dataclass
class TrainResult:
    artifact: ModelArtifact
    run_dir: Path
    loss_curve: Path
    resumed_from: str | None
    wandb_run_id: str | None
    is_global_zero: bool = True


def run_tokenizer(run_dir: Path, captions: list[str], config: TokenizerConfig) -> CaptionTokenizer:
    """Train the tokenizer once per run and reuse it on resume, so token ids never shift under a checkpoint."""
    directory = run_dir / "tokenizer"
    if (directory / "tokenizer.json").exists():
        return CaptionTokenizer.load(directory, config)
    tokenizer = train_tokenizer(captions, config)
    tokenizer.save(directory)
    return tokenizer


def run_model_config(config: TrainConfig, run_dir: Path, captions: list[str]) -> tuple[ModelConfig, CaptionTokenizer]:
    """The preset (or the starting artifact's config), adapted to the run: a pretrained text tower brings its
    own tokenizer; SigLIP needs a bias; the config's text preprocessing and image fit, where set, win."""
    model = config.model
    if model.init_from:
        info = ModelArtifact.load_light(Path(model.init_from))
        model_config, tokenizer = info.config.model_copy(deep=True), info.tokenizer
    else:
        model_config, tokenizer = _fresh_model_config(model, run_dir, captions)
    if model.text_preprocessing is not None or model.image_fit is not None:
        model_config.tokenizer.preprocessing = model.text_preprocessing or model_config.tokenizer.preprocessing
        model_config.image_fit = model.image_fit or model_config.image_fit
        tokenizer = CaptionTokenizer(tokenizer.tokenizer, model_config.tokenizer)
    if any(o.name == "siglip" for o in config.optim.objectives) and model_config.init_logit_bias is None:
        model_config.init_logit_scale, model_config.init_logit_bias = math.log(10), -10.0  # SigLIP's init
    return model_config, tokenizer


def _fresh_model_config(model: ModelSection, run_dir: Path, captions: list[str]) -> tuple[ModelConfig,
                                                                                          CaptionTokenizer]:
    model_config = preset(model.preset)
    if model.text_pretrained:
        model_config.text.pretrained = model.text_pretrained
        model_config, tokenizer = with_pretrained_text(model_config)
    else:
        tokenizer = run_tokenizer(run_dir, captions, model_config.tokenizer)
        model_config.tokenizer.vocab_size = tokenizer.vocab_size
    return model_config, tokenizer


def train(job: TrainingJob, report: Report | None = None) -> TrainResult:
    """`report` also receives the progress lines (an orchestrator's progress display)."""
    config, run_dir = job.config, Path(job.run_dir)
    if config.scale.strategy == "fsdp" and "://" in (config.logging.checkpoint_dir or ""):
        raise ValueError("strategy 'fsdp' writes sharded checkpoints (a folder per checkpoint, swapped in by a "
                         "rename) to a filesystem every rank shares: set logging.checkpoint_dir to a path, not "
                         f"{config.logging.checkpoint_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    model_config, tokenizer = run_model_config(config, run_dir, _training_captions(job))
    data = PairDataModule(job.dataset_dir, tokenizer, ImageTransform.for_model(model_config), config.data,
                          seed=config.seed, exclude=job.exclude, replay_dir=job.replay_dir,
                          replay_exclude=job.replay.quarantined if job.replay else frozenset())
    module = ContrastivePretraining(model_config, config.optim, config.model)
    unsharded = [name for name, part in module.objectives.parts.items() if not part.shards]
    if config.scale.strategy == "fsdp" and unsharded:
        raise ValueError(f"objective {unsharded[0]!r} keeps a whole copy of the model, which FSDP2 does not "
                         "shard: train it with strategy `ddp` (or `auto` on one device)")
    lora = _lora_record(config, module)
    checkpoints = config.logging.checkpoint_dir or str(run_dir / "checkpoints")
    loggers = _loggers(config, run_dir, model_config, job.lineage)
    trainer = _lightning_trainer(config, run_dir, checkpoints, loggers,
                                 ProgressLines(budget_minutes=config.optim.max_minutes, report=report))
    resumed_from = _last_checkpoint(checkpoints)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resumed_from, weights_only=True)
        stopped = _stopped_by_budget(trainer, config, checkpoints)
    except SystemExit:  # Lightning ends an interrupted fit with exit(1), once its own shutdown ran
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        raise TrainingInterrupted(trainer.global_step, config.optim.max_steps) from None
    finally:
        wandb_run_id = _finish_wandb(loggers)
    lineage = job.lineage.model_copy(update={
        "config_hash": config_hash(model_config, config),
        "training": redacted(without_local_paths({
            **job.lineage.training, **config.model_dump(mode="json"), "steps": trainer.global_step,
            "wandb_run_id": wandb_run_id, **({"stopped": stopped} if stopped else {}),
            **({"lora": lora} if lora else {})})),
    })
    model = _trained_model(trainer, model_config, config, run_dir)
    loss_curve = run_dir / "loss_curve.png"
    if trainer.is_global_zero:
        history = pd.concat([pd.read_csv(p) for p in sorted((run_dir / "logs").glob("attempt-*/metrics.csv"))])
        plot_loss_curves(history, loss_curve)
    return TrainResult(ModelArtifact(model, tokenizer, lineage), run_dir, loss_curve, resumed_from, wandb_run_id,
                       trainer.is_global_zero)


def _training_captions(job: TrainingJob) -> list[str]:
    """The captions a fresh tokenizer learns from: the training split, quarantined rows left out."""
    manifest = read_manifest(job.dataset_dir, exclude=job.exclude)
    rows = manifest[manifest["split"] == "train"]
    batch_size = job.config.data.batch_size
    if len(rows) < batch_size and not job.config.data.train_shards:
        raise ValueError(f"{len(rows)} training rows in {job.dataset_dir} after excluding {len(job.exclude)} "
                         f"quarantined: fewer than one batch of {batch_size}")
    return rows["caption"].astype(str).tolist()


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) ended training; a checkpoint was written where it stopped."""

    def __init__(self, step: int, max_steps: int) -> None:
        super().__init__(f"training interrupted at step {step} of {max_steps}; a checkpoint was written there: "
                         f"re-run the same command to resume from step {step}")


class CheckpointOnInterrupt(Callback):
    """On Ctrl-C, the run's `last.ckpt` at the step reached, so that re-running resumes there rather than at the
    last periodic checkpoint. The batch being trained when the interrupt came is not replayed."""

    def __init__(self, checkpoints: str) -> None:
        self.last = f"{checkpoints.rstrip('/')}/last.ckpt"

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0:
            trainer.save_checkpoint(self.last, weights_only=False)


def _stopped_by_budget(trainer: L.Trainer, config: TrainConfig, checkpoints: str) -> str | None:
    """When the time budget ended training early: checkpoint where it stopped (re-running resumes from
    there) and say so in the lineage."""
    if config.optim.max_minutes is None or trainer.global_step >= config.optim.max_steps:
        return None
    trainer.save_checkpoint(f"{checkpoints.rstrip('/')}/last.ckpt", weights_only=False)
    stopped = (f"time budget of {config.optim.max_minutes:g} min spent after {trainer.global_step} of "
               f"{config.optim.max_steps} steps")
    print(f"[train] {stopped}; re-running the same command resumes from the checkpoint", file=sys.stderr, flush=True)
    return stopped


def _lightning_trainer(config: TrainConfig, run_dir: Path, checkpoints: str, loggers: list[Logger],
                       progress: ProgressLines) -> L.Trainer:
    optim, scale, logging_ = config.optim, config.scale, config.logging
    return L.Trainer(
        max_steps=optim.max_steps, max_time=timedelta(minutes=optim.max_minutes) if optim.max_minutes else None,
        enable_progress_bar=False,  # ProgressLines instead: they read the same with or without a terminal
        accelerator="auto", devices=scale.devices, num_nodes=scale.num_nodes,
        strategy=_strategy(scale), precision=_precision(optim), accumulate_grad_batches=optim.accumulate_grad_batches,
        deterministic=optim.deterministic or None, logger=loggers, log_every_n_steps=min(10, optim.max_steps),
        val_check_interval=logging_.val_every_n_steps * optim.accumulate_grad_batches, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, enable_model_summary=False, default_root_dir=run_dir,
        use_distributed_sampler=False,  # our samplers split the data across ranks themselves
        callbacks=[progress, CheckpointOnInterrupt(checkpoints),
                   ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0,
                                   every_n_train_steps=logging_.checkpoint_every_n_steps)])


def _strategy(scale: ScaleSection) -> str | Strategy:
    """`ddp` syncs buffers only at the start: the model's are constants, and an objective's (feature queues, tens of MB)
    are kept identical on every rank by the objective itself, so rank 0 sending them every step is waste.
    `fsdp` is FSDP2 through Lightning's ModelParallelStrategy (every rank one shard of the data-parallel mesh,
    no tensor parallelism; the module shards itself in `configure_model`), on GPUs or, over gloo, on CPUs.
    Checkpoints are sharded (`torch.distributed.checkpoint`: a folder, each rank writing its own shard)."""
    if scale.strategy == "ddp":
        return DDPStrategy(forward_sync_buffers=False)
    if scale.strategy != "fsdp":
        return scale.strategy
    devices = scale.devices if isinstance(scale.devices, int) else max(1, torch.cuda.device_count())
    return ShardedCheckpoints(data_parallel_size=devices * scale.num_nodes, tensor_parallel_size=1,
                              save_distributed_checkpoint=True)


def _precision(optim: OptimSection) -> str:
    if optim.precision != "auto":
        return optim.precision
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def _last_checkpoint(directory: str) -> str | None:
    """`last.ckpt` in a local directory or under an s3:// prefix, where an earlier attempt left one (a sharded
    one killed between its two renames: the one it was replacing)."""
    fs, path = fsspec.core.url_to_fs(directory)
    for name in ("last.ckpt", f"last.ckpt{PREVIOUS}"):
        if fs.exists(f"{path.rstrip('/')}/{name}"):
            return f"{directory.rstrip('/')}/{name}"
    return None


def _trained_model(trainer: L.Trainer, config: ModelConfig, train_config: TrainConfig, run_dir: Path) -> DualEncoder:
    """The dual encoder's full weights, gathered from every shard under FSDP2 (a collective: all ranks call it);
    LoRA adapters merged in (and kept alone in the run, by rank 0)."""
    module = trainer.lightning_module
    if is_sharded(module):
        state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True))
    else:
        state = trainer.strategy.lightning_module_state_dict()
    weights = {k.removeprefix("model."): v.detach().cpu() for k, v in state.items() if k.startswith("model.")}
    model = DualEncoder(config, load_pretrained=False)
    lora = train_config.model.lora
    if lora is None:
        model.load_state_dict(weights)
        return model.eval()
    from components.training.lora import ADAPTER_DIR, merged, save_adapter

    if trainer.is_global_zero:
        save_adapter(weights, lora, run_dir / ADAPTER_DIR)
    return merged(model, lora, weights).eval()


def _lora_record(config: TrainConfig, module: ContrastivePretraining) -> dict | None:
    """What LoRA trains, said once at the start and kept in the lineage."""
    if config.model.lora is None:
        return None
    from components.training.lora import describe, parameter_counts

    counts = parameter_counts(module.model)
    print(f"[train] LoRA rank {config.model.lora.rank}: {describe(counts)}", file=sys.stderr, flush=True)
    return counts


def _loggers(config: TrainConfig, run_dir: Path, model_config: ModelConfig, lineage: Lineage) -> list[Logger]:
    # One CSV log per attempt: Lightning's CSVLogger would overwrite the history of the interrupted attempt.
    attempt = len(list((run_dir / "logs").glob("attempt-*")))
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version=f"attempt-{attempt}")]
    if config.logging.wandb:
        loggers.append(_wandb_logger(config, run_dir, redacted({"train": config.model_dump(mode="json"),
                                                                "model": model_config.model_dump(mode="json"),
                                                                "lineage": lineage.model_dump(mode="json")})))
    return loggers


def _wandb_logger(config: TrainConfig, run_dir: Path, run_config: dict) -> Logger:
    from lightning.pytorch.loggers import WandbLogger

    offline = os.environ.get("WANDB_MODE", "offline") != "online"
    logger = WandbLogger(project=config.logging.wandb_project, save_dir=str(run_dir), offline=offline,
                         config=run_config)
    # Lightning passes `anonymous=None` to `wandb.init`, which W&B answers with a deprecation warning on every
    # run ("The anonymous setting has no effect"); not passing it is what both mean.
    logger._wandb_init.pop("anonymous", None)
    return logger


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
