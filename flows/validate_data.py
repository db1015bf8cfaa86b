"""Flow `validate_data`: image scan + Great Expectations suite; fails the run on a failed dataset."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS

from components.validation.report import ValidationReport
from components.validation.validate import validate_dataset, write_report
from flows.report import markdown_table
from flows.settings import Platform


class DatasetRejected(RuntimeError):
    pass


# A dataset version is validated once: the cache key is the inputs, which include the DVC hash.
@task(cache_policy=INPUTS, result_serializer="json", persist_result=True)
def validate_version(dataset_dir: str, dataset_version: str, max_rejected_fraction: float) -> dict:
    report = validate_dataset(Path(dataset_dir), max_rejected_fraction)
    return report.model_dump(mode="json")


@flow(name="validate_data", log_prints=True)
def validate_data(dataset_dir: str, dataset_version: str, max_rejected_fraction: float = 0.05,
                  report_dir: str | None = None) -> ValidationReport:
    """Validate a dataset directory; rows that fail are quarantined, and too many of them fail the flow."""
    report = ValidationReport.model_validate(validate_version(dataset_dir, dataset_version, max_rejected_fraction))
    out = Path(report_dir or Platform.from_env().home / "reports" / dataset_version.replace("@", "-") / "validation")
    report_path, quarantine_path = write_report(report, out)
    create_table_artifact(
        key="validation-checks", description=f"Checks of {dataset_version}",
        table=[{"check": c.name, "passed": c.passed, "critical": c.critical, "failures": c.failures,
                "examples": ", ".join(c.examples)} for c in report.checks])
    create_markdown_artifact(key="validation-summary", description=f"Validation of {dataset_version}", markdown=(
        f"# Dataset {dataset_version}: {'passed' if report.passed else 'FAILED'}\n\n"
        f"Rows in **{report.rows_in}** = kept **{report.rows_kept}** + quarantined **{report.rows_quarantined}** "
        f"(limit {report.max_rejected_fraction:.0%}).\n\nReport: `{report_path}`  \nQuarantine: `{quarantine_path}`\n\n"
        + markdown_table([q.model_dump() for q in report.quarantine[:20]])))
    get_run_logger().info("%s: %d rows in, %d kept, %d quarantined", dataset_version, report.rows_in,
                          report.rows_kept, report.rows_quarantined)
    if not report.passed:
        failed = [c.name for c in report.checks if c.critical and not c.passed]
        raise DatasetRejected(f"dataset {dataset_version} failed validation: critical checks {failed}, "
                              f"rejected fraction {report.rejected_fraction:.1%}; see {report_path}")
    return report
