"""Every reader on files in its real format (generated where no real data can be had)."""

import json
import tarfile

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from components.config import ValidationConfig
from components.data.manifest import read_manifest
from components.data.readers import ColumnMapping, import_dataset, read_source
from components.data.shards import write_shards
from components.validation.validate import validate_dataset


def test_karpathy_on_real_ucm_captions(tmp_path, shared_data):
    frame = read_source("karpathy", shared_data / "ucm-captions" / "dataset_ucm.json", images=tmp_path).frame
    assert len(frame) == 2100 * 5 and frame["image_id"].nunique() == 2100
    per_split = frame.drop_duplicates("image_id")["split"].value_counts().to_dict()
    assert per_split == {"train": 1680, "val": 210, "test": 210}
    assert frame["caption"].iloc[0] == "There is a piece of farmland ."
    assert frame["sample_id"].is_unique


@pytest.mark.parametrize("fmt, path_key", [("cuhk-pedes", "file_path"), ("icfg-pedes", "file_path"),
                                           ("rstpreid", "img_path")])
def test_person_search_formats(tmp_path, fmt, path_key):
    (tmp_path / "imgs" / "cam1").mkdir(parents=True)
    records = []
    for i in range(6):
        Image.new("RGB", (24, 64), (40 * i, 0, 0)).save(tmp_path / "imgs" / "cam1" / f"{i}.jpg")
        records.append({"split": "train" if i < 4 else "test", "id": i // 2, path_key: f"cam1/{i}.jpg",
                        "captions": [f"a person in a red coat, shade {i}", f"someone wearing red ({i})"]})
    (tmp_path / "reid.json").write_text(json.dumps(records))
    out = import_dataset(read_source(fmt, tmp_path / "reid.json", images=tmp_path / "imgs"), tmp_path / "ds").manifest
    assert len(out) == 12 and out["person_id"].tolist() == [str(i // 2) for i in range(6) for _ in range(2)]
    manifest = read_manifest(tmp_path / "ds")
    assert manifest.groupby("image_id")["person_id"].nunique().max() == 1
    assert validate_dataset(tmp_path / "ds").rows_kept == 12


def write_dicom(path, pixels: np.ndarray, window: tuple[float, float] | None = None, monochrome1=False):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", "anon"
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME1" if monochrome1 else "MONOCHROME2",
                      bits_stored=12)
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.save_as(path, enforce_file_format=True)


def make_mimic(root):
    studies = [("10000032", "50414267", "d1", "train", "jpg"), ("10000032", "50414267", "d2", "train", "dcm"),
               ("10000764", "57375967", "d3", "validate", "dcm"), ("10000898", "50771383", "d4", "test", "jpg")]
    reports = {"50414267": "EXAMINATION: CHEST (PA AND LAT)\nFINDINGS: No focal consolidation.\n\nIMPRESSION: "
                           "No acute cardiopulmonary process.",
               "57375967": "FINDINGS:\n  Small left pleural effusion.\nIMPRESSION: Effusion.",
               "50771383": "WET READ: none"}  # no findings/impression: the caption is missing, and said so
    meta, split = [], []
    for n, (subject, study, dicom_id, part, ext) in enumerate(studies):
        folder = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder.parent / f"s{study}.txt").write_text(reports[study])
        gradient = np.tile(np.linspace(0, 4095, 64, dtype=np.uint16), (64, 1))
        gradient[-1, :n + 1] = 0  # each image its own pixels: identical ones would be flagged as leakage
        if ext == "dcm":
            write_dicom(folder / f"{dicom_id}.dcm", gradient, window=(1024, 2048), monochrome1=dicom_id == "d3")
        else:
            Image.fromarray((gradient // 16).astype(np.uint8)).save(folder / f"{dicom_id}.jpg")
        meta.append({"dicom_id": dicom_id, "subject_id": subject, "study_id": study, "ViewPosition": "PA"})
        split.append({"dicom_id": dicom_id, "study_id": study, "subject_id": subject, "split": part})
    pd.DataFrame(meta).to_csv(root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    pd.DataFrame(split).to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)


def test_mimic_cxr_with_jpeg_and_windowed_dicom(tmp_path):
    make_mimic(tmp_path / "mimic")
    rows = read_source("mimic-cxr", tmp_path / "mimic")
    frame = rows.frame
    assert frame["caption"].tolist()[:3] == [
        "No focal consolidation. No acute cardiopulmonary process.",
        "No focal consolidation. No acute cardiopulmonary process.", "Small left pleural effusion. Effusion."]
    assert pd.isna(frame["caption"].iloc[3]) and frame["split"].tolist() == ["train", "train", "val", "test"]
    impressions = read_source("mimic-cxr", tmp_path / "mimic", report_sections=("impression",))
    assert impressions.frame["caption"].iloc[2] == "Effusion."
    out = import_dataset(rows, tmp_path / "ds").manifest
    png = np.asarray(Image.open(tmp_path / "ds" / out["image"].iloc[1]))
    raw = np.linspace(0, 4095, 64)[20]  # window centre 1024, width 2048, DICOM's linear VOI function
    expected = np.clip(((raw - 1023.5) / 2047 + 0.5) * 255, 0, 255)
    assert png.dtype == np.uint8 and png[0, 0] == 0 and png[0, -1] == 255 and abs(int(png[0, 20]) - expected) <= 1
    inverted = np.asarray(Image.open(tmp_path / "ds" / out["image"].iloc[2]))
    assert inverted[0, 0] == 255 and inverted[0, -1] == 0  # MONOCHROME1: high values are dark
    report = validate_dataset(tmp_path / "ds", ValidationConfig(max_rejected_fraction=0.5))
    assert [q.reason for q in report.quarantine] == ["caption missing"] and report.rows_kept == 3


def test_tsv_parquet_and_invalid_utf8(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    (tmp_path / "t.tsv").write_bytes(b"img\ttext\na.png\ta black tile\na.png\tbad \xff\xfe bytes\n")
    rows = read_source("tsv", tmp_path / "t.tsv", columns=ColumnMapping(image="img", caption="text"))
    frame = rows.frame
    assert frame["caption"].tolist() == ["a black tile", "bad \ufffd\ufffd bytes"]
    frame.assign(image="a.png").to_parquet(tmp_path / "t.parquet")
    again = read_source("parquet", tmp_path / "t.parquet").frame
    assert again["caption"].tolist() == frame["caption"].tolist()
    import_dataset(rows, tmp_path / "ds")
    report = validate_dataset(tmp_path / "ds", ValidationConfig(max_rejected_fraction=0.5))
    assert [(q.sample_id, q.reason) for q in report.quarantine] == [("s0000001", "caption has invalid UTF-8")]


def test_webdataset_round_trip_and_reference_reader(tiny_dataset, tmp_path):
    shards = write_shards(tiny_dataset, tmp_path / "shards", samples_per_shard=64, resize=32)
    assert [s.name for s in shards] == ["test-000000.tar", "train-000000.tar", "train-000001.tar",
                                        "train-000002.tar", "val-000000.tar"]
    again = write_shards(tiny_dataset, tmp_path / "again", samples_per_shard=64, resize=32)
    assert [a.read_bytes() for a in again] == [s.read_bytes() for s in shards]  # deterministic bytes
    original = read_manifest(tiny_dataset)
    rows = read_source("webdataset", tmp_path / "shards", staging=tmp_path / "staging")
    out = import_dataset(rows, tmp_path / "ds").manifest
    roundtrip = read_manifest(tmp_path / "ds")
    key = ["sample_id", "caption", "image_id", "split"]
    pd.testing.assert_frame_equal(roundtrip[key].sort_values("sample_id").reset_index(drop=True),
                                  original[key].sort_values("sample_id").reset_index(drop=True))
    assert Image.open(tmp_path / "ds" / out["image"].iloc[0]).size == (32, 32)  # resized at shard time

    import webdataset as wds  # the reference reader sees the same samples

    samples = list(wds.WebDataset([str(s) for s in shards], shardshuffle=False))
    assert len(samples) == original["image_id"].nunique()
    assert {"__key__", "json", "txt", "png"} <= set(samples[0]) or {"__key__", "json", "txt", "jpg"} <= set(samples[0])
    with tarfile.open(shards[0]) as tar:
        assert all(m.mtime == 0 for m in tar.getmembers())


def test_malformed_and_undecodable_annotation_files(tmp_path):
    from components.data.manifest import ManifestError

    (tmp_path / "wrong.json").write_text('{"images": [{"filename": "a.jpg"}]}')  # no sentences
    with pytest.raises(ManifestError, match="does not look like karpathy .*'sentences'"):
        read_source("karpathy", tmp_path / "wrong.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        read_source("coco", tmp_path / "broken.json")
    (tmp_path / "bytes.json").write_bytes(b'[{"split": "train", "id": 1, "file_path": "a.jpg", '
                                          b'"captions": ["caf\\u00e9", "bad \xff byte"]}]')
    frame = read_source("cuhk-pedes", tmp_path / "bytes.json").frame
    assert frame["caption"].tolist() == ["caf\u00e9", "bad \ufffd byte"]
