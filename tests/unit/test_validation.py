import json

import pandas as pd
import pytest
from PIL import Image

from components.data.manifest import write_manifest
from components.validation.validate import validate_dataset, write_report


def make_dataset(tmp_path, rows):
    """rows: (image name, caption, writer) where writer(path) creates the file, or None for a missing file."""
    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i, (name, caption, writer) in enumerate(rows):
        if writer:
            writer(tmp_path / "images" / name)
        records.append({"sample_id": f"s{i}", "image": f"images/{name}", "caption": caption,
                        "image_id": name, "split": "train"})
    write_manifest(pd.DataFrame(records), tmp_path)
    return tmp_path


def good(path):
    Image.new("RGB", (32, 32), "red").save(path)


def truncated(path):
    good_bytes = path.with_suffix(".full")
    Image.new("RGB", (64, 64), "blue").save(good_bytes, format="JPEG")
    path.write_bytes(good_bytes.read_bytes()[:300])


BAD_ROWS = {
    "missing.jpg": (None, "missing file"),
    "empty.jpg": (lambda p: p.write_bytes(b""), "empty (0-byte) file"),
    "text.jpg": (lambda p: p.write_text("not an image at all"), "not an image"),
    "truncated.jpg": (truncated, "does not decode"),
    "dot.png": (lambda p: Image.new("RGB", (1, 1)).save(p), "smaller than 8 px"),
}


def test_each_bad_row_is_named_counted_and_quarantined(tmp_path):
    rows = [(f"ok{i}.png", f"a red square {i}", good) for i in range(10)]
    rows += [(name, "a caption", writer) for name, (writer, _) in BAD_ROWS.items()]
    rows += [("ok0.png", "", None), ("ok1.png", "   ", None), ("ok2.png", None, None)]
    report = validate_dataset(make_dataset(tmp_path, rows), max_rejected_fraction=0.5)
    reasons = {q.sample_id: q.reason for q in report.quarantine}
    for i, (name, (_, reason)) in enumerate(BAD_ROWS.items(), start=10):
        assert reasons[f"s{i}"].startswith(reason), (name, reasons.get(f"s{i}"))
    assert [reasons["s15"], reasons["s16"], reasons["s17"]] == ["caption empty", "caption empty", "caption missing"]
    assert (report.rows_in, report.rows_kept, report.rows_quarantined) == (18, 10, 8)
    assert report.passed  # 8/18 under the 50 % limit, no critical check failed
    failed = {c.name: c.failures for c in report.checks if not c.passed}
    assert failed["expect_column_values_to_be_in_set(image_problem)"] == 5
    assert failed["expect_column_values_to_not_be_null(caption)"] == 1


def test_too_many_rejects_fail_the_dataset(tmp_path):
    rows = [("ok.png", "fine", good), ("gone.jpg", "lost", None)]
    report = validate_dataset(make_dataset(tmp_path, rows), max_rejected_fraction=0.1)
    assert report.rejected_fraction == 0.5 and not report.passed


def test_duplicate_sample_ids_fail_a_critical_check(tmp_path):
    make_dataset(tmp_path, [("a.png", "x", good), ("b.png", "y", good)])
    frame = pd.read_parquet(tmp_path / "manifest.parquet").assign(sample_id=["same", "same"])
    frame.to_parquet(tmp_path / "manifest.parquet")
    report = validate_dataset(tmp_path)
    unique = next(c for c in report.checks if c.name == "expect_column_values_to_be_unique(sample_id)")
    assert unique.critical and not unique.passed and unique.examples == ["same", "same"]
    assert not report.passed


def test_report_files(tmp_path):
    dataset = make_dataset(tmp_path / "ds", [("a.png", "x", good), ("gone.png", "y", None)])
    report_path, quarantine_path = write_report(validate_dataset(dataset, 0.6), tmp_path / "out")
    payload = json.loads(report_path.read_text())
    assert payload["passed"] and payload["rows_quarantined"] == 1
    assert pd.read_csv(quarantine_path).to_dict("records") == [{"sample_id": "s1", "reason": "missing file"}]


def test_counts_must_add_up():
    from components.validation.report import ValidationReport

    with pytest.raises(ValueError, match="rows in must equal"):
        ValidationReport(dataset="d", rows_in=3, rows_kept=1, rows_quarantined=1, max_rejected_fraction=0.1,
                         checks=[], quarantine=[])
