"""`alignops demo | train | finetune`: the flows that make models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.errors import user_errors


def dataset_at(path: Path):
    """The dataset at `path`, resolved once (versioned when it is a tracked dataset of the workspace); a
    directory that is no dataset fails here, before a flow starts."""
    from components.data.manifest import read_manifest
    from flows.settings import Platform

    read_manifest(path)
    return Platform.from_env().dataset_ref(path)


def train_config_from(path: Path | None):
    """A TrainConfig from YAML or JSON (the flat shape of earlier releases still loads)."""
    import yaml
    from pydantic import ValidationError

    from components.config import TrainConfig

    if path is None:
        return TrainConfig()
    try:
        return TrainConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"{path}: {problems}. A TrainConfig has sections {TrainConfig.shape()}") from None


@user_errors
def demo(
    train_images: Annotated[int, typer.Option(help="training images (5 captions each)")] = 2000,
    steps: Annotated[int, typer.Option(help="training steps")] = 700,
    no_package: Annotated[bool, typer.Option("--no-package", help="skip the bento build")] = False,
    no_finetune: Annotated[bool, typer.Option("--no-finetune", help="skip the domain finetunes")] = False,
) -> None:
    """Generate data, version it with DVC, run the whole lifecycle and the domain finetunes, print a summary."""
    from components.config import SyntheticDataConfig, TrainConfig
    from flows.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(data=SyntheticDataConfig(train_images=train_images),
                                 train=TrainConfig(optim={"max_steps": steps}), package=not no_package,
                                 **({"domains": []} if no_finetune else {})))
    if not result.judged.verdict.passed or (result.smoke and not result.smoke.passed):
        raise typer.Exit(1)


@user_errors
def train(
    dataset: Annotated[Path, typer.Argument(help="dataset directory (manifest.parquet + images)")],
    config: Annotated[Path | None, typer.Option(help="TrainConfig as YAML or JSON (see the README)")] = None,
    run_name: Annotated[str, typer.Option(help="re-using a run name resumes that run")] = "pretrain",
    preset: Annotated[str, typer.Option(help="general, medical, remote_sensing or person")] = "general",
) -> None:
    """Run the `pretrain` flow (validate once per dataset version, then train); print the artifact's directory."""
    from flows.pretrain import pretrain

    typer.echo(pretrain(dataset_at(dataset), train_config_from(config), run_name, preset=preset))


@user_errors
def finetune(
    preset: Annotated[str, typer.Argument(metavar="PRESET", help="general, medical, remote_sensing or person")],
    dataset: Annotated[Path, typer.Argument(help="the dataset directory to adapt to")],
    general: Annotated[Path, typer.Option(help="the general eval dataset (forgetting rule, replay)")],
    base: Annotated[str, typer.Option(help="registry reference of the model to adapt")] = "general@production",
    config: Annotated[Path | None, typer.Option(help="TrainConfig over the preset's finetune recipe")] = None,
    mode: Annotated[str, typer.Option(help="full, lit or last_n")] = "full",
    max_general_drop: Annotated[float, typer.Option(help="tolerated drop of general mean recall")] = 0.10,
) -> None:
    """Run the `finetune` flow: adapt a registry version to a preset's data and register the gated result."""
    from components.domains import domain
    from flows.finetune import FinetuneConfig
    from flows.finetune import finetune as finetune_flow
    from registry.names import parse_ref

    domain(preset), parse_ref(base)  # bad names fail before a flow starts
    result = finetune_flow(FinetuneConfig(base_model=base, domain=preset, dataset=dataset_at(dataset),
                                          general=dataset_at(general), train=train_config_from(config), mode=mode,
                                          max_general_drop=max_general_drop))
    primary = result.primary_metric
    typer.echo(f"{result.model}:{result.version} from {result.parent}: {primary} {result.base_metrics[primary]:.3f} "
               f"-> {result.metrics[primary]:.3f}; gate {'passed' if result.verdict.passed else 'FAILED'}")
    if not result.verdict.passed:
        raise typer.Exit(1)


COMMANDS = (demo, train, finetune)
