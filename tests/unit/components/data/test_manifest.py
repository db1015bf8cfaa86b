import pandas as pd
import pytest

from components.data.manifest import ManifestError, check_manifest, resolve_image


def rows(**overrides):
    base = {"sample_id": ["s1", "s2"], "image": ["a.jpg", "b.jpg"], "caption": ["x", "y"],
            "image_id": ["a", "b"], "split": ["train", "test"]}
    return pd.DataFrame(base | overrides)


def test_valid_manifest_keeps_contract_order():
    frame = rows().assign(license="CC0", extra=1)[["extra", "license", "split", "caption", "image", "image_id",
                                                    "sample_id"]]
    assert list(check_manifest(frame).columns) == ["sample_id", "image", "caption", "image_id", "split", "license",
                                                   "extra"]


@pytest.mark.parametrize("frame, message", [
    (rows().drop(columns="image_id"), "lacks required columns \\['image_id'\\]"),
    (rows(sample_id=["s1", "s1"]), "sample_id must be unique; repeated: \\['s1'\\]"),
    (rows(split=["train", "holdout"]), "found \\['holdout'\\]"),
])
def test_contract_breaks_are_named(frame, message):
    with pytest.raises(ManifestError, match=message):
        check_manifest(frame)


def test_image_paths_cannot_leave_the_dataset(tmp_path):
    assert resolve_image(tmp_path, "images/a.jpg") == tmp_path / "images" / "a.jpg"
    for bad in ("../secret.jpg", "/etc/passwd", "images/../../x.jpg"):
        with pytest.raises(ManifestError, match="leaves the dataset directory"):
            resolve_image(tmp_path, bad)
