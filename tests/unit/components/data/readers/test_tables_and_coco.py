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


def _manifest_of_csv(tmp_path, images, name, paths, cwd, monkeypatch):
    table = tmp_path / f"{name}.csv"
    table.write_text("image,caption\n" + "".join(f"{p},caption {i}\n" for i, p in enumerate(paths)))
    monkeypatch.chdir(cwd)
    return import_dataset(SourceRows(read_table(table, image_root=images), images), tmp_path / name).manifest


def test_the_split_and_ids_do_not_depend_on_how_paths_are_spelt_or_where_the_import_runs(
        tmp_path, monkeypatch):
    images = tmp_path / "pics"
    (images / "sub").mkdir(parents=True)
    names = [f"sub/p{i:02d}.png" for i in range(40)]
    for name in names:
        Image.new("RGB", (8, 8), "green").save(images / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = _manifest_of_csv(tmp_path, images, "relative", names, tmp_path, monkeypatch)
    spelt = [str(images / n) if i % 2 else f"./{n}".replace("sub/", "sub/./") for i, n in enumerate(names)]
    absolute = _manifest_of_csv(tmp_path, images, "absolute", spelt, elsewhere, monkeypatch)
    columns = ["sample_id", "image", "image_id", "split"]
    assert relative[columns].equals(absolute[columns])  # every row keeps its split, id and file name
    assert relative["image_id"].tolist() == names
    assert set(relative["split"]) == {"train", "val", "test"}
    for frame in (relative, absolute):
        assert not frame.map(lambda v: str(tmp_path) in str(v)).any().any()  # no local path in the manifest


def test_missing_images_are_quarantined_and_counted_or_fail_the_import_when_required(tmp_path, images):
    from components.data.readers import MissingImages

    table = tmp_path / "pairs.csv"
    table.write_text("image,caption\na.jpg,red\nnope.jpg,gone\nb.png,blue\nnope.jpg,gone again\nalso/gone.png,x\n")
    result = import_dataset(SourceRows(read_table(table, image_root=images), images), tmp_path / "ds")
    assert result.missing_images == ["also/gone.png", "nope.jpg"]
    assert len(result.manifest) == 2 and len(result.quarantined) == 3 and result.rows_in == 5
    assert result.quarantined["reason"].str.startswith("missing image: ").all()
    assert (tmp_path / "ds" / "import_quarantine.csv").is_file()

    with pytest.raises(MissingImages, match=r"2 image\(s\) .* do not exist .*'also/gone.png'.*--require-images"):
        import_dataset(SourceRows(read_table(table, image_root=images), images), tmp_path / "strict",
                       require_images=True)
    assert not (tmp_path / "strict").exists()  # nothing written
