"""Flow `validate_data`: image scan + Great Expectations suite; fails the run on a failed dataset."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.context import TaskRunContext

from components.config import ValidationConfig
from components.data.reference import DatasetRef
from components.validation.expectations import suite_fingerprint
from components.validation.validate import validate_dataset, write_report
from components.validation.validated import ValidatedDataset, ValidationReport
from flows.steps.cluster import Cluster
from flows.steps.datasets import on_this_machine
from flows.steps.output import markdown_table
from flows.steps.platform import Platform


class DatasetRejected(RuntimeError):
    def __init__(self, message: str, report: ValidationReport | None = None):
        super().__init__(message)
        self.report = report


def _version_and_suite(context: TaskRunContext, parameters: dict) -> str | None:
    """A dataset version is validated once per suite: the key is its DVC hash and the suite's fingerprint
    (no hash, no caching: the bytes could have changed)."""
    dataset: DatasetRef = parameters["dataset"]
    if not dataset.versioned:
        return None
    return f"validate-{dataset.hash}-{suite_fingerprint(parameters['config'])}"


@task(cache_key_fn=_version_and_suite, result_serializer="json", persist_result=True)
def scan_and_check(dataset: DatasetRef, config: ValidationConfig, out_dir: str, cluster: Cluster) -> dict:
    return validate_dataset(Path(dataset.path), config, Path(out_dir), images_at=dataset.images or None,
                            runner=cluster.runner(dataset.content_key())).model_dump(mode="json")


@flow(name="validate_data", log_prints=True)
def validate_data(dataset: DatasetRef,
                  config: ValidationConfig = ValidationConfig(),  # noqa: B008 - a default the UI form shows
                  cluster: Cluster = Cluster(),  # noqa: B008 - a default the UI form shows
                  ) -> ValidatedDataset:
    """Validate a dataset: rows that fail are quarantined (training and evaluation leave them out), and the
    flow fails when a critical check fails or more than `max_rejected_fraction` of the rows are rejected.
    A versioned dataset is scanned once per validation suite; its images are scanned on `cluster`."""
    dataset = on_this_machine(dataset)
    out = Platform.from_env().reports / dataset.key
    report = ValidationReport.model_validate(scan_and_check(dataset, config, str(out), cluster))
    report_path, quarantine_path = write_report(report, out)
    publish(dataset, report, report_path, quarantine_path)
    if not report.passed:
        failed = [c.name for c in report.checks if c.critical and not c.passed]
        raise DatasetRejected(f"dataset {dataset.ref} failed validation: critical checks {failed}, "
                              f"rejected fraction {report.rejected_fraction:.1%} (limit "
                              f"{report.max_rejected_fraction:.0%}); see {report_path}", report)
    return ValidatedDataset.from_report(dataset, report)


def publish(dataset: DatasetRef, report: ValidationReport, report_path: Path, quarantine_path: Path) -> None:
    """The checks table, the Data Docs link and a summary, as Prefect artifacts; the counts in the log."""
    create_table_artifact(
        key="validation-checks", description=f"Checks of {dataset.ref}",
        table=[{"check": c.name, "passed": c.passed, "critical": c.critical, "failures": c.failures,
                "examples": ", ".join(c.examples)} for c in report.checks])
    if report.data_docs:
        create_link_artifact(key="validation-data-docs", link=Path(report.data_docs).as_uri(),
                             link_text="Great Expectations Data Docs", description=f"Data Docs of {dataset.ref}")
    facts = report.image_facts
    create_markdown_artifact(key="validation-summary", description=f"Validation of {dataset.ref}", markdown=(
        f"# Dataset {dataset.ref}: {'passed' if report.passed else 'FAILED'}\n\n"
        f"Rows in **{report.rows_in}** = kept **{report.rows_kept}** + quarantined **{report.rows_quarantined}** "
        f"(limit {report.max_rejected_fraction:.0%}).  \n{facts.images} images; modes {facts.modes}; "
        f"{facts.exif_rotated} EXIF-rotated; {facts.duplicate_images} duplicates.\n\n"
        f"Report: `{report_path}`  \nQuarantine: `{quarantine_path}`  \nData Docs: `{report.data_docs}`\n\n"
        + markdown_table([q.model_dump() for q in report.quarantine[:20]])))
    get_run_logger().info("%s: %d rows in, %d kept, %d quarantined", dataset.ref, report.rows_in,
                          report.rows_kept, report.rows_quarantined)
