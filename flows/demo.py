"""`alignops demo`: the whole lifecycle on generated data with embedded defaults, then a summary."""

from __future__ import annotations

import json
import shutil
import time

from pydantic import BaseModel, Field
from rich.panel import Panel

from components.config import SyntheticDataConfig, TrainConfig
from components.data.generators import generate_domain_dataset
from components.data.generators.synthetic import generate_dataset
from components.data.manifest import MANIFEST_FILE
from components.data.reference import DatasetRef
from components.domains import DOMAINS
from components.training.progress import duration
from flows.demo_upgrade import UpgradeDemoConfig, print_upgrade, upgrade_demo
from flows.finetune import FinetuneConfig, FinetuneResult, finetune
from flows.lifecycle import LifecycleConfig, LifecycleResult, lifecycle
from flows.steps.output import bold, console, line, rich_table, verdict_mark
from flows.steps.platform import Platform
from flows.steps.stages import StagePlan, stage
from infra.catalog import EvalSet, add_eval_set
from infra.stack import load_stack
from infra.workspace import DatasetVersion, track_dataset

DATASET_NAME = "synthetic"
REQUIRED_CHANCE_MULTIPLE = 20.0

# What each stage took on a 2-core machine with nothing else running (2026-12-07); the demo's ETA scales
# them by how the finished stages compare. Training is priced per step.
FIRST_LOOK_SECONDS = {"start the local Prefect API": 12.0, "generate and version the data": 4.0, "validate": 3.0,
                      "measure, judge, register": 2.0, "promote": 1.0, "build the bento": 3.0,
                      "serve it and answer a search": 14.0, "finetune": 25.0, "upgrade": 0.0}
TOUR_SECONDS = FIRST_LOOK_SECONDS | {"generate and version the data": 5.0, "validate": 3.0,
                                     "measure, judge, register": 1.0, "finetune": 95.0, "upgrade": 330.0}
TRAIN_START_S, TRAIN_STEP_S = 3.0, 0.5
LIFECYCLE_STAGES = ("start the local Prefect API", "generate and version the data", "validate", "train",
                    "measure, judge, register", "promote", "build the bento", "serve it and answer a search")
PACKAGE_STAGES = ("build the bento", "serve it and answer a search")


class DemoConfig(BaseModel):
    """The first look by default: every stage of the lifecycle at the smallest scale that still shows it."""

    data: SyntheticDataConfig = Field(default_factory=lambda: SyntheticDataConfig(train_images=600))
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(optim={"max_steps": 200}))
    model_name: str = "general"
    gate_policy: str = "synthetic"  # fixed floors: the generated data is well known
    package: bool = True
    domains: list[str] = Field(default_factory=lambda: ["remote_sensing"], description="finetuned after pretraining")
    domain_images: int = Field(300, ge=50, description="generated for each domain")
    finetune_steps: int | None = Field(60, ge=1, description="steps of each domain finetune; none: the preset's "
                                                             "recipe")
    upgrade: UpgradeDemoConfig | None = Field(None, description="a model line upgraded without re-embedding its "
                                                                "gallery")
    stage_seconds: dict[str, float] = Field(default_factory=lambda: dict(FIRST_LOOK_SECONDS),
                                            description="what each stage usually takes, for the ETA")

    @classmethod
    def tour(cls) -> DemoConfig:
        """Everything, at the scale that shows each effect clearly: three domains and the upgrade table."""
        return cls(data=SyntheticDataConfig(), train=TrainConfig(optim={"max_steps": 700}), domains=sorted(DOMAINS),
                   domain_images=800, finetune_steps=None, upgrade=UpgradeDemoConfig(),
                   stage_seconds=dict(TOUR_SECONDS))


def prepare_dataset(platform: Platform, data: SyntheticDataConfig) -> DatasetRef:
    """Generate the dataset inside the DVC workspace (once per config) and track it."""
    platform.open_workspace()
    dataset_dir = platform.workspace / DATASET_NAME
    stamp = dataset_dir / ".generator.json"  # DVC tracks it too: the data's version covers its recipe
    if not (dataset_dir / MANIFEST_FILE).exists() or stamp.read_text() != data.model_dump_json():
        with console.status(f"Generating {data.train_images}+{data.val_images}+{data.test_images} captioned images"):
            shutil.rmtree(dataset_dir, ignore_errors=True)
            generate_dataset(data, dataset_dir)
            stamp.write_text(data.model_dump_json())
    with console.status("Versioning the dataset with DVC"):
        version = track_dataset(platform.workspace, dataset_dir, f"Generated dataset ({data.model_dump_json()})")
    add_eval_set(platform.workspace, EvalSet(name=f"{DATASET_NAME}_test", dataset=version.path))
    return as_reference(platform, version)


def as_reference(platform: Platform, version: DatasetVersion) -> DatasetRef:
    return DatasetRef(path=str(platform.workspace / version.path), ref=version.ref, hash=version.dvc_md5)


def planned_stages(config: DemoConfig) -> dict[str, float]:
    """The demo's stages, each with the seconds it usually takes."""
    seconds = config.stage_seconds | {"train": TRAIN_START_S + config.train.optim.max_steps * TRAIN_STEP_S}
    plan = {name: seconds[name] for name in LIFECYCLE_STAGES if config.package or name not in PACKAGE_STAGES}
    plan |= {f"finetune {name}": seconds["finetune"] for name in config.domains}
    return plan | ({"upgrade without re-embedding": seconds["upgrade"]} if config.upgrade else {})


def flow_api_ready() -> None:
    """Prefect's API answering: the temporary server started now (where none is configured), counted on its own
    rather than inside the first flow; it serves every flow of this process."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.api_healthcheck()


def run_demo(config: DemoConfig) -> LifecycleResult:
    platform, plan = Platform.from_env(), StagePlan(planned_stages(config))
    console.rule(bold("alignops demo"))
    console.print(line(f"State directory: {platform.home}. It usually takes {duration(sum(plan.expected_s.values()))} "
                       "on a 2-core machine."))
    if not platform.signing_key.exists():  # production holds only signed versions: the demo signs as "demo"
        console.print(line(f"Signing key: {platform.create_signing_key('demo')} (created and trusted as 'demo')."))
    with plan.active():
        with stage("start the local Prefect API"):
            flow_api_ready()
        with stage("generate and version the data"):
            dataset = prepare_dataset(platform, config.data)
        console.print(line("Dataset ", bold(dataset.ref), f" (DVC {dataset.hash})"))
        result = lifecycle(LifecycleConfig(model_name=config.model_name, dataset=dataset, train=config.train,
                                           package=config.package, gate_policy=config.gate_policy))
        finetunes = finetune_domains(platform, config, result, dataset)
        with stage("upgrade without re-embedding"):
            upgraded = upgrade_demo(dataset, config.train, config.gate_policy, config.upgrade) if config.upgrade \
                else None
    print_summary(platform, result, finetunes, plan)
    if upgraded:
        print_upgrade(upgraded)
    platform.demo_summary.write_text(json.dumps(
        {"lifecycle": result.model_dump(mode="json"), "finetune": [f.model_dump(mode="json") for f in finetunes],
         "upgrade": upgraded.model_dump(mode="json") if upgraded else None}, indent=2))
    return result


def finetune_domains(platform: Platform, config: DemoConfig, result: LifecycleResult,
                     general: DatasetRef) -> list[FinetuneResult]:
    """Adapt the promoted general model to each domain, on generated data in that domain's native format."""
    if not config.domains or result.promoted_to is None:
        return []
    results = []
    for name in config.domains:
        console.rule(bold(f"finetune: {name}"))
        steps = {"max_steps": config.finetune_steps} if config.finetune_steps else {}
        with stage(f"finetune {name}"):
            version = domain_dataset(platform, name, config.domain_images)
            results.append(finetune(FinetuneConfig(
                base_model=f"{config.model_name}@{result.promoted_to}", domain=name,
                dataset=as_reference(platform, version), general=general, train=TrainConfig(optim=steps))))
    return results


def domain_dataset(platform: Platform, name: str, images: int) -> DatasetVersion:
    """Generated in the domain's native format, imported, versioned and named as the domain's eval set."""
    dataset_dir = platform.workspace / f"{name}-data"
    with console.status(f"Generating {images} {name} images in their native format and importing them"):
        stamp = dataset_dir / ".images"
        if not (dataset_dir / "dataset" / MANIFEST_FILE).exists() or stamp.read_text() != str(images):
            shutil.rmtree(dataset_dir, ignore_errors=True)
            generate_domain_dataset(name, dataset_dir, images)
            stamp.write_text(str(images))
        version = track_dataset(platform.workspace, dataset_dir / "dataset", f"Generated {name} dataset")
        add_eval_set(platform.workspace, EvalSet(name=f"{name}_test", dataset=version.path, domain=name))
    return version


def print_summary(platform: Platform, result: LifecycleResult, finetunes: list[FinetuneResult],
                  plan: StagePlan) -> None:
    v, e, verdict = result.validated.report, result.judged.measured, result.judged.verdict
    console.rule(bold("Summary"))
    console.print(line(f"Dataset {result.validated.dataset.ref}: validation ", verdict_mark(v.passed),
                       f" — rows in {v.rows_in} = kept {v.rows_kept} + quarantined {v.rows_quarantined}; "
                       f"{sum(c.passed for c in v.checks)}/{len(v.checks)} checks passed"))
    if e.refusal:
        console.print(line(f"{result.judged.record.ref} could not be measured: {e.refusal} — ", verdict_mark(False)))
        return
    eval_set, (images, captions) = next(iter(e.sizes.items()))
    floors = {r.metric: r for r in verdict.rules if r.rule == "floor"}
    console.print(rich_table(
        f"{eval_set}: {images} held-out images, {captions} captions (wordings unseen in training)",
        ["metric", "value", "95% interval (n)", "chance", "x chance", "gate floor", "gate"],
        [(m, f"{x:.3f}", f"{e.intervals[m].low:.3f}-{e.intervals[m].high:.3f} ({e.intervals[m].n})"
          if m in e.intervals else "", f"{e.chance[m]:.3f}" if m in e.chance else "",
          f"{x / e.chance[m]:.1f}x" if e.chance.get(m) else "",
          f"{floors[m].threshold:.3f}" if m in floors else "", verdict_mark(floors[m].passed) if m in floors else "")
         for m, x in e.metrics.items()]))
    for rule in verdict.rules:
        console.print(line(f"  gate {rule.rule}: {rule.reason} — ", verdict_mark(rule.passed)))
    t2i, chance = e.metrics[f"{eval_set}/t2i_r1"], e.chance[f"{eval_set}/t2i_r1"]
    console.print(line("text->image R@1 on held-out test: ", bold(f"{t2i:.3f}"), f" vs chance {chance:.3f} "
                       f"({t2i / chance:.1f}x; the demo requires >= {REQUIRED_CHANCE_MULTIPLE:.0f}x) ",
                       verdict_mark(t2i >= REQUIRED_CHANCE_MULTIPLE * chance)))
    registry = platform.registry()
    console.print(rich_table(f"Registry {platform.registry_url}: model {result.model}",
                             ["version", "created", "gate", "aliases"],
                             [(r.version, r.created_at[:19], verdict_mark(r.gate_passed),
                               ", ".join(registry.aliases_of(r))) for r in registry.list_versions(result.model)]))
    if result.smoke:
        console.print(line("Bento ", bold(result.bento_tag), "; smoke test ", verdict_mark(result.smoke.passed),
                           f" (served vs registry embeddings: max abs diff text {result.smoke.text_max_abs_diff:.1e}, "
                           f"image {result.smoke.image_max_abs_diff:.1e})"))
        console.print(line("Serve it: ", bold(f"alignops serve {result.bento_tag}")))
    else:
        console.print("No bento: the version was not promoted.")
    if finetunes:
        print_finetunes(finetunes)
    stack = load_stack(platform.home)
    browse = (f"Flow runs and their artifacts: the Prefect UI at {stack.ui_url or stack.prefect_api_url}"
              if stack else "Flow runs and their artifacts: `alignops up`, then open the Prefect UI it prints")
    console.print(rich_table("Where the time went", ["stage", "usually", "took"], plan.rows()))
    console.print(Panel(line(
        f"Finished in {duration(time.monotonic() - plan.started)}. Pictures: loss curve and retrieval examples "
        f"under {platform.runs}.\n{browse}"), expand=False))


def print_finetunes(finetunes: list[FinetuneResult]) -> None:
    rows = []
    for f in finetunes:
        domain_set = f.primary_metric.split("/")[0]
        general = next(m for m in f.metrics if m.endswith("_test/mean_recall") and not m.startswith(domain_set))
        rows.append((f"{f.model}:{f.version}", f.primary_metric.split("/")[-1],
                     f"{f.base_metrics[f.primary_metric]:.3f}", f"{f.metrics[f.primary_metric]:.3f}",
                     f"{f.base_metrics[general]:.3f}→{f.metrics[general]:.3f}", f"{f.mix:.2f}",
                     verdict_mark(f.verdict.passed)))
    console.print(rich_table(f"Domain finetunes from {finetunes[0].parent} (test sets)",
                             ["version", "metric", "base", "tuned", "general mR", "mix", "gate"], rows))
    for f in finetunes:
        for rule in f.verdict.failures:
            console.print(line(f"  {f.model} gate {rule.rule}: {rule.reason} — ", verdict_mark(False)))
