"""The Great Expectations suite over the manifest and the columns the image scan derives."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from components.data.manifest import SPLITS
from components.validation.report import CheckResult

MAX_CAPTION_CHARS = 1000


def manifest_suite() -> list[tuple[gxe.Expectation, bool]]:
    """(expectation, critical): a failed critical expectation fails the dataset outright."""
    return [
        (gxe.ExpectTableRowCountToBeBetween(min_value=1), True),
        (gxe.ExpectColumnValuesToBeUnique(column="sample_id"), True),
        (gxe.ExpectColumnValuesToNotBeNull(column="image"), True),
        (gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)), True),
        (gxe.ExpectColumnValuesToNotBeNull(column="caption"), False),
        (gxe.ExpectColumnValueLengthsToBeBetween(column="caption", min_value=1, max_value=MAX_CAPTION_CHARS), False),
        (gxe.ExpectColumnValuesToBeInSet(column="image_problem", value_set=["ok"]), False),
    ]


def run_suite(frame: pd.DataFrame) -> list[CheckResult]:
    """Run the suite in an ephemeral GX context; one CheckResult per expectation."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (context.data_sources.add_pandas("alignops").add_dataframe_asset("manifest")
             .add_batch_definition_whole_dataframe("all"))
    suite = context.suites.add(gx.ExpectationSuite(name="manifest"))
    expectations = manifest_suite()
    for expectation, _ in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="manifest", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame})
    critical = {_check_name(e.expectation_type, getattr(e, "column", None)): c for e, c in expectations}
    checks = []
    for outcome in result.results:
        config = outcome.expectation_config
        name = _check_name(config.type, config.kwargs.get("column"))
        checks.append(CheckResult(
            name=name, passed=bool(outcome.success), critical=critical.get(name, False),
            failures=int(outcome.result.get("unexpected_count") or (0 if outcome.success else 1)),
            examples=[str(v) for v in (outcome.result.get("partial_unexpected_list") or [])[:5]]))
    return checks


def _check_name(expectation_type: str, column: str | None) -> str:
    return f"{expectation_type}({column})" if column else expectation_type
