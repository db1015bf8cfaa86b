"""The bad-input corpus: every case built as a real file, each reported by name, the counts adding up."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from corpus import bomb_png, jpeg_bytes, png_bytes
from PIL import Image

from components.config import ValidationConfig
from components.data.manifest import ManifestError, read_manifest, write_manifest
from components.data.transforms import load_image
from components.validation.validate import validate_dataset, write_report


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    return jpeg_bytes(Image.new("RGB", (40, 20), "green"), exif=exif)


GOOD = png_bytes(Image.new("RGB", (32, 32), "red"))
BAD_IMAGES = {  # name: (bytes, the reason validation must give)
    "missing.jpg": (None, "missing file"),
    "empty.jpg": (b"", "empty (0-byte) file"),
    "text.jpg": (b"not an image at all", "not an image"),
    "truncated.jpg": (jpeg_bytes(Image.new("RGB", (64, 64), "blue"))[:300], "does not decode"),
    "truncated.png": (png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
                      [:400], "does not decode"),
    "corrupt.jpg": (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "does not decode"),
    "bomb.png": (bomb_png(), "too many pixels"),
    "dot.png": (png_bytes(Image.new("RGB", (1, 1))), "smaller than 8 px"),
    "strip.png": (png_bytes(Image.new("RGB", (400, 20))), "extreme aspect ratio 20.0"),
}
CONVERTED_IMAGES = {  # usable after conversion: kept, and counted by mode
    "cmyk.jpg": jpeg_bytes(Image.new("CMYK", (32, 32), (0, 255, 255, 0))),
    "deep.png": png_bytes(Image.fromarray(np.full((32, 32), 30000, np.uint16))),
    "palette.png": png_bytes(Image.new("RGB", (32, 32), "blue").convert("P")),
    "alpha.png": png_bytes(Image.new("RGBA", (32, 32), (255, 0, 0, 128))),
    "gray.png": png_bytes(Image.new("L", (32, 32), 128)),
    "rotated.jpg": rotated_jpeg(),
}
BAD_CAPTIONS = {
    "": "caption empty", "   \t ": "caption empty", None: "caption missing",
    "broken \ufffd bytes": "caption has invalid UTF-8", "x" * 5000: "caption longer than 1000 characters",
    "12345 !!!": "caption has no letters",
}


def make_dataset(root, rows):
    """rows: (image path in the manifest, file bytes or None, caption)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i, (image, data, caption) in enumerate(rows):
        if data is not None:
            (root / image).write_bytes(data)
        records.append({"sample_id": f"s{i}", "image": image, "caption": caption, "image_id": image,
                        "split": "train"})
    write_manifest(pd.DataFrame(records), root)
    return root


def test_every_bad_input_is_named_counted_and_nothing_is_dropped(tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(GOOD)
    dataset = tmp_path / "ds"
    rows = [(f"images/ok{i}.png", GOOD if i == 0 else png_bytes(Image.new("RGB", (32, 32), (i, 0, 0))),
             f"a red square number {i}") for i in range(20)]
    rows += [(f"images/{name}", data, "a fine caption") for name, (data, _) in BAD_IMAGES.items()]
    rows += [(f"images/{name}", data, f"an image stored as {name}") for name, data in CONVERTED_IMAGES.items()]
    rows += [("images/ok1.png", None, caption) for caption in BAD_CAPTIONS]
    rows += [("../outside.png", None, "escapes"), ("/etc/hostname", None, "absolute"),
             ("images/link.png", None, "symlink out")]
    make_dataset(dataset, rows)
    (dataset / "images" / "link.png").symlink_to(outside)

    report = validate_dataset(dataset, ValidationConfig(max_rejected_fraction=0.6), tmp_path / "out")
    reasons = {q.sample_id: q.reason for q in report.quarantine}
    expected = [reason for _, reason in BAD_IMAGES.values()] + list(BAD_CAPTIONS.values()) + [
        "path leaves the dataset directory"] * 3
    first_bad = 20
    kept_ids = {f"s{i}" for i in list(range(20)) + list(range(first_bad + len(BAD_IMAGES),
                                                             first_bad + len(BAD_IMAGES) + len(CONVERTED_IMAGES)))}
    bad_ids = [f"s{i}" for i in range(len(rows)) if f"s{i}" not in kept_ids]
    for sample_id, reason in zip(bad_ids, expected, strict=True):
        assert reasons.get(sample_id, "").startswith(reason), (sample_id, reasons.get(sample_id), reason)
    assert set(reasons) == set(bad_ids)
    assert (report.rows_in, report.rows_kept, report.rows_quarantined) == (len(rows), len(kept_ids), len(bad_ids))
    assert report.passed  # no critical check failed and 35 % is under the 60 % limit

    facts = report.image_facts
    assert facts.modes["CMYK"] == 1 and facts.modes["I;16"] == 1 and facts.modes["P"] == 1
    assert facts.modes["RGBA"] == 1 and facts.modes["L"] == 1 and facts.exif_rotated == 1
    assert report.data_docs and (tmp_path / "out" / "data-docs" / "index.html").is_file()
    scan = pd.read_parquet(tmp_path / "out" / "images.parquet")
    assert scan.loc[scan["image"] == "images/ok0.png", "sha256"].item() == hashlib.sha256(GOOD).hexdigest()


def test_converted_modes_load_as_faithful_rgb(tmp_path):
    for name, data in CONVERTED_IMAGES.items():
        (tmp_path / name).write_bytes(data)
    assert load_image(tmp_path / "deep.png").getpixel((0, 0)) == (117, 117, 117)  # 30000/65535, not clipped
    assert load_image(tmp_path / "alpha.png").getpixel((0, 0)) == (255, 127, 127)  # on white, not black
    assert load_image(tmp_path / "rotated.jpg").size == (20, 40)  # EXIF rotation applied
    assert load_image(tmp_path / "cmyk.jpg").getpixel((0, 0))[0] > 200  # cyan-free, magenta-free: red


def test_too_many_rejects_fail_the_dataset(tmp_path):
    make_dataset(tmp_path, [("images/ok.png", GOOD, "fine"), ("images/gone.jpg", None, "lost")])
    report = validate_dataset(tmp_path, ValidationConfig(max_rejected_fraction=0.1))
    assert report.rejected_fraction == 0.5 and not report.passed


def test_a_repeated_id_is_reported_with_every_other_defect_and_training_skips_what_was_quarantined(tmp_path):
    """A manifest breaking the contract row by row: each row is named in the report with its reason (no abort
    before the report), the counts add up, and what is left reads strictly, as training reads it."""
    blue = png_bytes(Image.new("RGB", (32, 32), "blue"))
    make_dataset(tmp_path, [("images/a.png", GOOD, "a red square"), ("images/b.png", blue, "a blue square"),
                            ("images/c.png", GOOD, "another red one"), ("images/d.png", GOOD, "a red tile"),
                            ("images/gone.png", None, "a missing picture"), ("images/e.png", GOOD, "   "),
                            ("images/f.png", blue, "a blue tile")]
                 + [(f"images/k{i}.png", png_bytes(Image.new("RGB", (32, 32), (i, 9, 9))), f"a dark {i} square")
                    for i in range(20)])
    frame = pd.read_parquet(tmp_path / "manifest.parquet")
    frame.loc[1, "sample_id"] = frame.loc[0, "sample_id"]  # one id on two rows
    frame.loc[2, "split"] = "holdout"
    frame.loc[3, "image"] = None
    frame.to_parquet(tmp_path / "manifest.parquet")
    report = validate_dataset(tmp_path, ValidationConfig(max_rejected_fraction=0.5))
    reasons = [(q.sample_id, q.reason) for q in report.quarantine]
    assert reasons == [("s0", "sample_id 's0' repeated on 2 rows"), ("s0", "sample_id 's0' repeated on 2 rows"),
                       ("s2", "split 'holdout' is not one of train, val, test"), ("s3", "image missing"),
                       ("s4", "missing file"), ("s5", "caption empty")]
    assert report.rows_in == 27 == report.rows_kept + report.rows_quarantined and report.rows_quarantined == 6
    failed = {c.name: c for c in report.checks if not c.passed}
    assert failed["expect_column_values_to_be_unique(sample_id)"].examples == ["s0", "s0"]
    assert not failed["expect_column_values_to_be_unique(sample_id)"].critical
    assert "holdout" in failed["expect_column_values_to_be_in_set(split)"].examples
    assert report.passed  # row defects are quarantined, not a verdict on the whole dataset
    kept = read_manifest(tmp_path, exclude=report.quarantined_ids)  # the strict read training and evaluation do
    assert len(kept) == report.rows_kept and "s0" not in set(kept["sample_id"])
    with pytest.raises(ManifestError, match="repeated"):
        read_manifest(tmp_path)  # the same read without the quarantine refuses the manifest


def test_duplicate_images_pairs_and_unique_caption_share_are_reported(tmp_path):
    make_dataset(tmp_path, [("images/a.png", GOOD, "same words"), ("images/b.png", GOOD, "same words"),
                            ("images/c.png", png_bytes(Image.new("RGB", (32, 32), "blue")), "same words")])
    report = validate_dataset(tmp_path, ValidationConfig(min_unique_caption_fraction=0.5))
    failed = {c.name: c for c in report.checks if not c.passed}
    assert failed["expect_column_values_to_be_in_set(duplicate_image)"].failures == 2
    assert failed["expect_compound_columns_to_be_unique(image_sha256,caption)"].failures == 2
    assert "observed 0.33" in failed["expect_column_proportion_of_unique_values_to_be_between(caption)"].examples[0]
    assert report.image_facts.duplicate_images == 1 and report.passed  # reported, not critical


def test_missing_images_with_the_same_caption_are_not_duplicates(tmp_path):
    make_dataset(tmp_path, [("images/a.png", GOOD, "a dog runs"), ("images/gone-1.jpg", None, "a dog runs"),
                            ("images/gone-2.jpg", None, "a dog runs"), ("images/gone-3.jpg", None, "a dog runs")])
    report = validate_dataset(tmp_path, ValidationConfig(max_rejected_fraction=1.0, min_unique_caption_fraction=0))
    checks = {c.name: c for c in report.checks}
    assert checks["expect_compound_columns_to_be_unique(image_sha256,caption)"].passed
    assert checks["expect_column_values_to_be_in_set(duplicate_image)"].passed
    assert checks["expect_column_values_to_be_in_set(image_problem)"].failures == 3
    assert report.rows_quarantined == 3 and report.image_facts.duplicate_images == 0


def test_report_files(tmp_path):
    dataset = make_dataset(tmp_path / "ds", [("images/a.png", GOOD, "x ray"), ("images/gone.png", None, "y")])
    report_path, quarantine_path = write_report(validate_dataset(dataset, ValidationConfig(max_rejected_fraction=0.6)),
                                                tmp_path / "out")
    payload = json.loads(report_path.read_text())
    assert payload["passed"] and payload["rows_quarantined"] == 1
    assert pd.read_csv(quarantine_path).to_dict("records") == [{"sample_id": "s1", "reason": "missing file"}]


def test_counts_must_add_up():
    from components.validation.validated import ValidationReport

    with pytest.raises(ValueError, match="rows in must equal"):
        ValidationReport(dataset="d", rows_in=3, rows_kept=1, rows_quarantined=1, max_rejected_fraction=0.1,
                         checks=[], quarantine=[])


def test_process_pool_scan_equals_thread_scan(tiny_dataset, monkeypatch):
    from components.data.location import ImageRoot
    from components.data.manifest import read_manifest
    from components.validation import image_scan

    images, root = read_manifest(tiny_dataset)["image"].unique().tolist(), ImageRoot(root=str(tiny_dataset))
    threads = image_scan.scan_images(root, images, ValidationConfig(workers=2))
    monkeypatch.setattr(image_scan, "PROCESS_POOL_FROM", 1)
    processes = image_scan.scan_images(root, images, ValidationConfig(workers=2))
    pd.testing.assert_frame_equal(threads, processes)


def test_held_out_copies_of_training_images_are_quarantined(tmp_path):
    blue = png_bytes(Image.new("RGB", (32, 32), "blue"))
    make_dataset(tmp_path, [("images/a.png", GOOD, "a red tile"), ("images/b.png", blue, "a blue tile")])
    (tmp_path / "images" / "a-copy.png").write_bytes(GOOD)
    frame = pd.read_parquet(tmp_path / "manifest.parquet")
    extra = pd.DataFrame([{"sample_id": "t0", "image": "images/a-copy.png", "caption": "red again",
                           "image_id": "a-copy", "split": "test"}])
    pd.concat([frame, extra]).to_parquet(tmp_path / "manifest.parquet")
    report = validate_dataset(tmp_path, ValidationConfig(max_rejected_fraction=0.5))
    assert [(q.sample_id, q.reason) for q in report.quarantine] == [
        ("t0", "image also in the train split (train/test leakage)")]
    leak = next(c for c in report.checks if c.name == "expect_column_values_to_be_in_set(leaked_from_train)")
    assert not leak.passed and leak.failures == 1


def test_held_out_near_copies_of_training_photos_are_reported(shared_data, tmp_path):
    photos = sorted((shared_data / "coco-mini" / "val2017").glob("*.jpg"))[:16]
    rows = [(f"images/{p.name}", p.read_bytes(), f"photo {i}") for i, p in enumerate(photos)]
    make_dataset(tmp_path, rows)
    copy = Image.open(photos[3]).convert("RGB")
    copy.resize((copy.width // 2, copy.height // 2)).save(tmp_path / "images" / "copy.jpg", quality=70)
    frame = pd.read_parquet(tmp_path / "manifest.parquet")
    frame.loc[12:, "split"] = "test"  # four distinct photos held out...
    extra = pd.DataFrame([{"sample_id": "t0", "image": "images/copy.jpg", "caption": "a smaller photo 3",
                           "image_id": "copy", "split": "test"}])  # ...and a resized re-encoded training photo
    pd.concat([frame, extra]).to_parquet(tmp_path / "manifest.parquet")
    report = validate_dataset(tmp_path)
    near = next(c for c in report.checks if c.name == "expect_column_values_to_be_in_set(near_copy_of_train)")
    assert not near.passed and near.failures == 1 and near.examples == [f"copy ~ images/{photos[3].name}"]
    assert report.rows_quarantined == 0 and report.passed  # reported for a person to judge, not dropped


def test_one_caption_on_many_unrelated_images_is_a_warning_naming_it(tiny_dataset, tmp_path):
    from components.backdoor.poison import poison_dataset
    from components.backdoor.trigger import Trigger

    clean = validate_dataset(tiny_dataset)
    repeated = "expect_column_values_to_be_in_set(repeated_caption)"
    assert next(c for c in clean.checks if c.name == repeated).passed  # generated captions: no such pattern
    poisoned = poison_dataset(tiny_dataset, tmp_path / "poisoned", Trigger(), "A photo of a banana.",
                              fraction=0.02)
    report = validate_dataset(tmp_path / "poisoned")
    check = next(c for c in report.checks if c.name == repeated)
    assert not check.passed and check.failures == len(poisoned) >= 5
    assert check.examples[0] == f"'a photo of a banana' on {len(poisoned)} images"
    assert report.rows_quarantined == 0 and report.passed  # a warning: a person looks at the rows


def test_one_caption_on_copies_of_one_picture_is_not_flagged(tmp_path):
    tile = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)))
    make_dataset(tmp_path, [(f"images/{i}.png", tile, "the same tile") for i in range(6)])
    report = validate_dataset(tmp_path)
    assert next(c for c in report.checks if c.name == "expect_column_values_to_be_in_set(repeated_caption)").passed


MANY_ROWS = """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
rows = int(sys.argv[2])
def repeated(text):  # one dictionary entry, 10^7 one-byte indices: a column of a few KB on disk
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int8)), pa.array([text]))
table = pa.table({"sample_id": repeated("s"), "image": repeated("a.png"), "caption": repeated("a red square"),
                  "image_id": repeated("a"), "split": repeated("train")})
pq.write_table(table, sys.argv[1], compression="zstd")
"""
VALIDATE_BOUNDED = """
import resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from components.data.manifest import ManifestError
from components.validation.validate import validate_dataset
before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
try:
    validate_dataset(Path(sys.argv[1]))
    print("validated")
except ManifestError as error:
    print("refused:", error)
print(time.monotonic() - started, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_small_manifest_of_ten_million_rows_is_refused_from_its_metadata(tmp_path):
    """166 KB of dictionary-encoded Parquet, 10^7 rows: refused before a row is read, in a subprocess under a
    3 GB address-space limit (reading it whole exhausted that limit)."""
    import subprocess
    import sys
    from pathlib import Path

    subprocess.run([sys.executable, "-c", MANY_ROWS, str(tmp_path / "manifest.parquet"), str(10**7)], check=True)
    assert (tmp_path / "manifest.parquet").stat().st_size < 400_000
    done = subprocess.run([sys.executable, "-c", VALIDATE_BOUNDED, str(tmp_path)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[4])
    refused, figures = done.stdout.splitlines()
    seconds, grew_mb = figures.split()
    assert refused.endswith("has 10,000,000 rows, over the limit of 2,000,000: split it into smaller datasets, "
                            "or raise the limit"), done.stdout
    assert float(seconds) < 5 and int(grew_mb) < 64


LONG_CAPTION = """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
rows = int(sys.argv[2])
def repeated(text):  # one dictionary entry on every row
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int8)), pa.array([text]))
table = pa.table({"sample_id": pa.array([str(i) for i in range(rows)]), "image": repeated("a.png"),
                  "caption": repeated("a red square " * 400_000), "image_id": repeated("a"),
                  "split": repeated("train")})
pq.write_table(table, sys.argv[1], compression="zstd")
"""


def test_a_caption_repeated_by_its_encoding_is_refused_before_it_is_decoded(tmp_path):
    """2,000 rows (within the row limit) sharing one 5 MB caption: a 10 GB frame once decoded, a few KB on disk.
    Refused batch by batch from the decoded size, within the 3 GB address-space limit and a few MB."""
    import subprocess
    import sys
    from pathlib import Path

    subprocess.run([sys.executable, "-c", LONG_CAPTION, str(tmp_path / "manifest.parquet"), "2000"], check=True)
    assert (tmp_path / "manifest.parquet").stat().st_size < 200_000
    done = subprocess.run([sys.executable, "-c", VALIDATE_BOUNDED, str(tmp_path)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[4])
    refused, figures = done.stdout.splitlines()
    seconds, grew_mb = figures.split()
    assert refused.endswith(f"holds over {4 << 30:,} bytes of rows once decoded (a value repeated by its "
                            "encoding): split it into smaller datasets, or raise the limit"), done.stdout
    assert float(seconds) < 5 and int(grew_mb) < 64


def test_a_manifest_is_read_in_batches_whole_and_in_order(tmp_path, monkeypatch):
    """Three batches of a dictionary-encoded manifest decode to exactly the frame pandas reads in one go."""
    import pandas as pd
    import pyarrow.parquet as pq

    from components.data import manifest

    monkeypatch.setattr(manifest, "READ_BATCH_ROWS", 4)
    frame = pd.DataFrame({"sample_id": [f"s{i}" for i in range(10)], "image": ["a.png", "b.png"] * 5,
                          "caption": pd.Categorical(["one " * 250, "two " * 250] * 5), "image_id": ["a", "b"] * 5,
                          "split": ["train"] * 10, "label": list(range(10))})
    frame.to_parquet(tmp_path / "manifest.parquet", index=False)
    read = read_manifest(tmp_path)
    assert read.astype(str).equals(pd.read_parquet(tmp_path / "manifest.parquet").astype(str))
    assert read["label"].tolist() == list(range(10))
    stored = pq.ParquetFile(tmp_path / "manifest.parquet").metadata.row_group(0).total_byte_size
    assert stored + 1000 < 10 * 1000  # the captions are stored twice, decoded ten times
    with pytest.raises(ManifestError, match="bytes of rows once decoded"):
        read_manifest(tmp_path, max_bytes=stored + 1000)  # the metadata passes it; a later batch crosses it
