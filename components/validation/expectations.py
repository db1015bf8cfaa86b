"""The Great Expectations suite over the manifest and the columns the scan derives, with Data Docs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from components.config import ValidationConfig
from components.data.manifest import SPLITS
from components.validation.offline_docs import make_offline
from components.validation.validated import CheckResult


def manifest_suite(config: ValidationConfig) -> list[tuple[gxe.Expectation, bool]]:
    """(expectation, critical): a failed critical expectation fails the dataset outright; the others
    are reported, and their rows quarantined where a row is at fault."""
    return [
        (gxe.ExpectTableRowCountToBeBetween(min_value=1), True),
        # Row-level breaks of the contract are reported and their rows quarantined, not a verdict on the whole
        # dataset: the report then names every other defect too.
        (gxe.ExpectColumnValuesToBeUnique(column="sample_id"), False),
        (gxe.ExpectColumnValuesToNotBeNull(column="sample_id"), False),
        (gxe.ExpectColumnValuesToNotBeNull(column="image"), False),
        (gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)), False),
        (gxe.ExpectColumnValuesToNotBeNull(column="caption"), False),
        (gxe.ExpectColumnValueLengthsToBeBetween(column="caption", min_value=1,
                                                 max_value=config.max_caption_chars), False),
        (gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column="caption",
                                                             min_value=config.min_unique_caption_fraction), False),
        (gxe.ExpectColumnValuesToBeInSet(column="image_problem", value_set=["ok"]), False),
        (gxe.ExpectColumnValuesToBeInSet(column="duplicate_image", value_set=[False]), False),
        (gxe.ExpectColumnValuesToBeInSet(column="leaked_from_train", value_set=[False]), False),
        # reported, not quarantined: a person judges a near copy (`data curate` drops the train side)
        (gxe.ExpectColumnValuesToBeInSet(column="near_copy_of_train", value_set=[""]), False),
        # a warning too: one caption on many unrelated pictures is what a poisoning attack plants
        (gxe.ExpectColumnValuesToBeInSet(column="repeated_caption", value_set=[""]), False),
        # a row whose image is missing has no bytes to be a duplicate of (its image problem reports it)
        (gxe.ExpectCompoundColumnsToBeUnique(column_list=["image_sha256", "caption"],
                                             ignore_row_if="any_value_is_missing"), False),
    ]


def suite_fingerprint(config: ValidationConfig) -> str:
    """Changes when the checks change, so a cached verdict is never reused for a different suite."""
    source = b"".join(Path(__file__).with_name(name).read_bytes()
                      for name in ("expectations.py", "image_scan.py", "validate.py"))
    return hashlib.sha256(source + config.model_dump_json().encode()).hexdigest()[:16]


def run_suite(frame: pd.DataFrame, config: ValidationConfig, docs_dir: Path | None = None) -> list[CheckResult]:
    """Run the suite in an ephemeral GX context (one CheckResult per expectation); with `docs_dir`, GX
    Data Docs HTML is written there."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    if docs_dir is not None:
        context.add_data_docs_site(site_name="alignops", site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            # GX needs an absolute folder: a relative one fails deep inside it, after the whole scan
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(docs_dir).resolve())}})
    batch = (context.data_sources.add_pandas("alignops").add_dataframe_asset("manifest")
             .add_batch_definition_whole_dataframe("all"))
    suite = context.suites.add(gx.ExpectationSuite(name="alignops-manifest"))
    expectations = manifest_suite(config)
    for expectation, _ in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="manifest", data=batch, suite=suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["alignops"])] if docs_dir else []
    checkpoint = context.checkpoints.add(gx.Checkpoint(name="alignops", validation_definitions=[definition],
                                                       actions=actions))
    result = next(iter(checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()))
    if docs_dir is not None:
        make_offline(docs_dir)
    critical = {_check_name(e.expectation_type, _columns(e.configuration.kwargs)): c for e, c in expectations}
    checks = []
    for outcome in result.results:
        config_ = outcome.expectation_config
        name = _check_name(config_.type, _columns(config_.kwargs))
        observed = outcome.result.get("observed_value")
        checks.append(CheckResult(
            name=name, passed=bool(outcome.success), critical=critical.get(name, False),
            failures=int(outcome.result.get("unexpected_count") or (0 if outcome.success else 1)),
            examples=[_example(v) for v in (outcome.result.get("partial_unexpected_list") or [])[:5]]
            or ([f"observed {observed}"] if observed is not None and not outcome.success else [])))
    return checks


def _columns(kwargs: dict) -> str | None:
    column = kwargs.get("column") or kwargs.get("column_list")
    return ",".join(column) if isinstance(column, list) else column


def _example(value: object) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict) else str(value)


def _check_name(expectation_type: str, column: str | None) -> str:
    return f"{expectation_type}({column})" if column else expectation_type
