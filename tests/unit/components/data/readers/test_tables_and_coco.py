import json

import pytest
from PIL import Image

from components.data.manifest import ManifestError, read_manifest
from components.data.readers import ColumnMapping, SourceRows, import_dataset, read_coco_captions, read_table


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for name, colour in (("a.jpg", "red"), ("b.png", "blue")):
        Image.new("RGB", (20, 20), colour).save(folder / name)
    return folder


def test_csv_with_mapped_columns_bom_crlf_quotes_and_multiline(tmp_path, images):
    table = tmp_path / "pairs.csv"
    table.write_bytes(
        "\ufefffile,text,group,part\r\n"
        'a.jpg,"a red square, filling the frame",img-a,train\r\n'
        'b.png,"a blue square\r\nover two lines",img-b,TEST\r\n'
        "a.jpg,,img-a,train\r\n".encode())
    frame = read_table(table, ColumnMapping(image="file", caption="text", image_id="group", split="part"), images)
    assert frame["caption"].tolist() == ["a red square, filling the frame", "a blue square\r\nover two lines", ""]
    out = import_dataset(SourceRows(frame, images), tmp_path / "ds").manifest
    manifest = read_manifest(tmp_path / "ds")
    assert len(manifest) == 3 and manifest["split"].tolist() == ["train", "test", "train"]
    assert manifest["image"].nunique() == 2
    for relative in manifest["image"]:
        assert (tmp_path / "ds" / relative).is_file()
    assert out["caption"].iloc[2] == ""  # kept for validation to report, not dropped


def test_jsonl_derives_image_id_and_split(tmp_path, images):
    table = tmp_path / "pairs.jsonl"
    table.write_text("\n".join(json.dumps({"image": n, "caption": c}) for n, c in
                               [("a.jpg", "red"), ("a.jpg", "crimson"), ("b.png", "blue")]))
    manifest = import_dataset(SourceRows(read_table(table, image_root=images), images), tmp_path / "ds").manifest
    assert manifest.groupby("image_id")["split"].nunique().max() == 1  # all captions of an image share a split
    assert manifest["image_id"].nunique() == 2


def test_missing_column_is_named(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text("path,caption\nx.jpg,hello\n")
    with pytest.raises(ManifestError, match=r"columns \['image'\] not found.*--column"):
        read_table(table)


def test_coco_captions_on_real_coco_mini(tmp_path, shared_data):
    root = shared_data / "coco-mini"
    frame = read_coco_captions(root / "annotations" / "captions_val2017.json", root / "val2017")
    assert len(frame) == 395 and frame["image_id"].nunique() == 79
    assert frame["license"].str.contains("License|copyright|Government").all()
    manifest = import_dataset(SourceRows(frame, root / "val2017"), tmp_path / "coco").manifest
    assert (manifest.groupby("image_id").size() == 5).all()
    assert sorted(read_manifest(tmp_path / "coco")["sample_id"]) == sorted(frame["sample_id"])
    for relative in manifest["image"].unique():
        assert (tmp_path / "coco" / relative).stat().st_size > 0
