"""Paths from data never escape their folder: the rule itself, every importer, WebDataset shards, DICOM sizes
and run names, each attacked and checked by looking around the target afterwards."""

import io
import json
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from components.data.manifest import ManifestError, read_manifest
from components.data.readers import import_dataset, read_source
from components.data.readers.importer import QUARANTINE_FILE
from components.data.shards import ShardLimits, shard_key
from components.data.transforms import ImageTooLarge, load_image
from core.containment import UnsafePath, contained, relative_path, segment_name

SECRET = b"outside the dataset folder"


@pytest.mark.parametrize("value", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "", "a\\..\\b",
                                   "C:/x", "a\nb", "a\x00b", "x" * 2000, "a/" + "y" * 300])
def test_the_rule_refuses_every_escape(value):
    with pytest.raises(UnsafePath):
        relative_path(value)


def test_the_rule_accepts_plain_relative_paths_and_catches_symlinks_out(tmp_path):
    assert str(relative_path("images/a-1.jpg")) == "images/a-1.jpg"
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="through a symlink"):
        contained(tmp_path / "root", "link/secret.txt")
    assert contained(tmp_path / "root", "sub/a.jpg") == (tmp_path / "root" / "sub" / "a.jpg").resolve()


@pytest.mark.parametrize("value", ["x\n", "../runs", "a/b", ".hidden", "", "x" * 200])
def test_segment_names_full_match(value):
    with pytest.raises(UnsafePath):
        segment_name(value, "run name")


def _scene(tmp_path: Path) -> tuple[Path, Path]:
    """An image folder with one good image and a link out, and a secret file beside it."""
    images = tmp_path / "src" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (16, 16), (200, 0, 0)).save(images / "good.png")
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    (images / "link.png").symlink_to(secret)
    return images, secret


HOSTILE = ["../../secret.png", "{secret}", "link.png"]  # climbs out, absolute, symlink out


def _annotations(fmt: str, images: Path, secret: Path) -> Path:
    names = ["good.png"] + [h.format(secret=secret) for h in HOSTILE]
    folder = images.parent
    if fmt == "coco":
        data = {"images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
                "annotations": [{"id": i, "image_id": i, "caption": f"caption {i}"} for i in range(len(names))]}
    elif fmt == "karpathy":
        data = {"images": [{"filename": n, "imgid": i, "split": "train", "sentences": [{"raw": f"c {i}"}]}
                           for i, n in enumerate(names)]}
    elif fmt == "cuhk-pedes":
        data = [{"split": "train", "id": i, "file_path": n, "captions": [f"person {i}"]} for i, n in enumerate(names)]
    elif fmt in ("csv", "jsonl"):
        frame = pd.DataFrame({"image": names, "caption": [f"c {i}" for i in range(len(names))]})
        path = folder / f"pairs.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_json(path, orient="records", lines=True)
        return path
    path = folder / f"{fmt}.json"
    path.write_text(json.dumps(data))
    return path


def _look_around(tmp_path: Path, dest: Path, secret: Path, beside: tuple[str, ...] = ()) -> None:
    """Nothing outside `dest` was written, and no file under it holds (or links to) the secret."""
    assert os.stat(secret).st_nlink == 1  # never hard-linked into the dataset
    for path in dest.rglob("*"):
        assert not path.is_symlink() and (not path.is_file() or path.read_bytes() != SECRET), path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", "secret.png", "src", *beside])


@pytest.mark.parametrize("fmt", ["coco", "karpathy", "cuhk-pedes", "csv", "jsonl"])
def test_importers_quarantine_paths_that_escape(tmp_path, fmt):
    images, secret = _scene(tmp_path)
    annotations = _annotations(fmt, images, secret)
    result = import_dataset(read_source(fmt, annotations, images=images), tmp_path / "ds")
    assert result.rows_in == 4 and len(result.manifest) == 1 and len(result.quarantined) == 3
    reasons = result.quarantined["reason"].tolist()
    assert any("`..` segment" in r for r in reasons) and any("lies outside" in r for r in reasons)
    assert any("through a symlink" in r for r in reasons)
    on_disk = pd.read_csv(tmp_path / "ds" / QUARANTINE_FILE)
    assert on_disk["sample_id"].tolist() == result.quarantined["sample_id"].tolist()
    assert str(tmp_path) not in (tmp_path / "ds" / QUARANTINE_FILE).read_text()  # versioned: no local path in it
    assert len(read_manifest(tmp_path / "ds")) == 1
    _look_around(tmp_path, tmp_path / "ds", secret)


def test_mimic_ids_that_climb_out_are_neither_read_nor_copied(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    report = tmp_path / "sX.txt"  # a "report" outside the folder that a crafted subject id points at
    report.write_text("FINDINGS: private. IMPRESSION: private.")
    (root / "mimic-cxr-2.0.0-metadata.csv").write_text(
        "dicom_id,subject_id,study_id,ViewPosition\n../../../secret,10000001/../../../..,X,PA\n")
    (root / "mimic-cxr-2.0.0-split.csv").write_text("dicom_id,split\n../../../secret,train\n")
    result = import_dataset(read_source("mimic-cxr", root), tmp_path / "ds")
    assert result.rows_in == 1 and len(result.quarantined) == 1 and len(result.manifest) == 0
    rows = read_source("mimic-cxr", root).frame
    assert rows["caption"].isna().all()  # the outside report was not read
    _look_around(tmp_path, tmp_path / "ds", secret, beside=("sX.txt",))


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_webdataset_keys_a_slash_b_and_a_underscore_b_stay_two_samples(tmp_path):
    shard = _tar(tmp_path / "s.tar", {"a/b.png": _png("red"), "a/b.txt": b"a red tile",
                                       "a_b.png": _png("blue"), "a_b.txt": b"a blue tile"})
    rows = read_source("webdataset", shard, staging=tmp_path / "staging")
    result = import_dataset(rows, tmp_path / "ds")
    assert len(result.manifest) == 2
    for _, row in result.manifest.iterrows():
        pixel = Image.open(tmp_path / "ds" / row["image"]).getpixel((0, 0))
        assert (pixel[0] > pixel[2]) == ("red" in row["caption"])  # each caption with its own image
    assert shard_key("a/b") != shard_key("a_b")  # the writer keeps them apart too


@pytest.mark.parametrize(("members", "message"), [
    ({"../evil.png": b"x"}, r"`\.\.` segment"),
    ({"/tmp/evil.png": b"x"}, "is absolute"),
    ({"k.png": b"x", "k.PNG": b"y"}, "two .png members"),
])
def test_webdataset_member_names_are_checked_before_writing(tmp_path, members, message):
    shard = _tar(tmp_path / "s.tar", members)
    with pytest.raises(ManifestError, match=message):
        read_source("webdataset", shard, staging=tmp_path / "staging")
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()


def test_webdataset_compressed_and_oversized_shards_are_refused_unread(tmp_path):
    _tar(tmp_path / "z.tar", {"k.txt": b"\0" * 300_000}, mode="w:gz")  # 300 KB of zeros, a few hundred bytes
    with pytest.raises(ManifestError, match="gzip-compressed: its decompressed size cannot be bounded"):
        read_source("webdataset", tmp_path / "z.tar", staging=tmp_path / "staging")
    big = _tar(tmp_path / "big.tar", {"k.json": b"{}" * 1000})
    from components.data.readers.webdataset import read_webdataset

    with pytest.raises(ManifestError, match="declares 2000 bytes, over the limit of 100"):
        read_webdataset(big, tmp_path / "staging", limits=ShardLimits(max_text_bytes=100))
    with pytest.raises(ManifestError, match="more than 1 members"):
        read_webdataset(_tar(tmp_path / "two.tar", {"a.txt": b"a", "b.txt": b"b"}), tmp_path / "staging",
                        limits=ShardLimits(max_members=1))


def _dicom(path: Path, rows: int, columns: int) -> Path:
    """A real DICOM file whose header declares rows x columns 16-bit pixels but holds only a little data."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, columns, 16, 12, 11
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.PixelData = np.zeros(64 * 1000, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_dicom_declaring_8000_squared_pixels_is_quarantined_before_decoding(tmp_path):
    images = tmp_path / "src"
    images.mkdir()
    _dicom(images / "bomb.dcm", 8000, 8000)
    (images / "pairs.csv").write_text("image,caption\nbomb.dcm,a chest x-ray\n")
    started = time.monotonic()
    result = import_dataset(read_source("csv", images / "pairs.csv"), tmp_path / "ds")
    assert time.monotonic() - started < 30  # refused from the header, not after allocating 8000 x 8000
    assert len(result.quarantined) == 1 and "declares 8000x8000 pixels" in result.quarantined["reason"][0]
    assert not list((tmp_path / "ds" / "images").glob("*"))


def test_every_image_format_is_checked_against_the_pixel_limit_before_decoding(tmp_path):
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLarge, match="declares 300x300 pixels, over the limit of 10000"):
        load_image(tmp_path / "big.png", max_pixels=10_000)


@pytest.mark.parametrize(("umask", "private"), [(None, True), ("022", False)])
def test_the_state_directory_is_private_unless_configured_otherwise(tmp_path, umask, private):
    import subprocess
    import sys

    env = {**os.environ, "ALIGNOPS_HOME": str(tmp_path / "home")}
    env.pop("ALIGNOPS_UMASK", None)
    if umask:
        env["ALIGNOPS_UMASK"] = umask
    script = ("from components.runtime import configure_environment; from registry.registry import Registry; "
              "import pathlib; home = configure_environment(); a = home / 'a'; a.mkdir(); "
              "(a / 'w.bin').write_bytes(b'x'); Registry.local(home / 'registry').register('m', a)")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=Path(__file__).parents[2])
    modes = {p: p.stat().st_mode & 0o777 for p in [tmp_path / "home", *(tmp_path / "home").rglob("*")]}
    assert len(modes) > 8
    assert all((mode & 0o077 == 0) == private for mode in modes.values()), {str(p): oct(m) for p, m in modes.items()}


def test_credentials_are_masked_in_urls_text_and_configs(monkeypatch):
    from core.secrets import redact, redacted, strip_userinfo

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIsecret")
    assert strip_userinfo("https://alice:pw@dvc.example:8443/store?x=1") == "https://dvc.example:8443/store?x=1"
    assert redact("S3 at http://alice:pw@127.0.0.1:9 failed; key wJalrXUtnFEMIsecret") == \
        "S3 at http://***@127.0.0.1:9 failed; key ***"
    config = {"train": {"train_shards": ["s3://k:s@b/x.tar"], "steps": 3}, "note": "wJalrXUtnFEMIsecret"}
    assert redacted(config) == {"train": {"train_shards": ["s3://***@b/x.tar"], "steps": 3}, "note": "***"}


def test_a_dvc_remote_with_credentials_is_committed_without_them(tmp_path):
    import subprocess

    from infra.workspace import init_workspace

    workspace = init_workspace(tmp_path / "ws", "https://alice:hunter2pw@dvc.example/store")
    history = subprocess.run(["git", "log", "-p", "--all"], cwd=workspace, capture_output=True, text=True).stdout
    assert "hunter2pw" not in history and "https://dvc.example/store" in history
    assert "hunter2pw" in (workspace / ".dvc" / "config.local").read_text()  # kept on this machine only


def test_records_leaving_the_machine_keep_no_local_path():
    from core.containment import without_local_paths

    training = {"model": {"init_from": "/home/ci/.alignops/runs/ft-1/base"}, "data": {"train_shards": [
        "s3://bucket/shard-0.tar", "/mnt/shards/shard-1.tar"]}, "optim": {"objectives": [
            {"name": "bct", "options": {"old": "/tmp/old-models/general-3"}}]}, "steps": 30, "note": "a/b"}
    assert without_local_paths(training) == {
        "model": {"init_from": "base (local)"}, "data": {"train_shards": ["s3://bucket/shard-0.tar",
                                                                        "shard-1.tar (local)"]},
        "optim": {"objectives": [{"name": "bct", "options": {"old": "general-3 (local)"}}]}, "steps": 30,
        "note": "a/b"}


DEFLATED_DICOM = """
import sys
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
ds = FileDataset(sys.argv[1], {}, file_meta=meta, preamble=b"\\0" * 128)
ds.Rows = ds.Columns = int(sys.argv[2])
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel = 16, 12, 11, 1
ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 0
ds.PixelData = np.zeros(ds.Rows * ds.Columns, dtype=np.uint16).tobytes()
ds.save_as(sys.argv[1], enforce_file_format=True)
"""
CONVERT_BOUNDED = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from components.data.dicom import dicom_to_png
from components.data.transforms import ImageTooLarge
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    dicom_to_png(Path(sys.argv[1]), Path(sys.argv[1]).with_suffix(".png"))
    print("converted")
except ImageTooLarge as error:
    print("refused:", error)
print("grew", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, "MB")
"""


def test_a_small_deflated_dicom_declaring_8000_squared_pixels_is_refused_with_bounded_memory(tmp_path):
    """125 KB on disk, 128 MB of pixels once inflated: counted while inflating, nothing kept, under a 3 GB
    address-space limit (pydicom alone once grew by 245 MB reading it, the whole import by 606 MB)."""
    import subprocess
    import sys

    path = tmp_path / "bomb.dcm"
    subprocess.run([sys.executable, "-c", DEFLATED_DICOM, str(path), "8000"], check=True)
    assert path.stat().st_size < 200_000
    done = subprocess.run([sys.executable, "-c", CONVERT_BOUNDED, str(path)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[3])
    refused, grew = done.stdout.splitlines()
    assert refused.startswith("refused: DICOM bomb.dcm inflates past") and int(grew.split()[1]) < 32, done.stdout
    assert not path.with_suffix(".png").exists()

    subprocess.run([sys.executable, "-c", DEFLATED_DICOM, str(path), "600"], check=True)  # within every limit
    done = subprocess.run([sys.executable, "-c", CONVERT_BOUNDED, str(path)], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[3])
    assert done.stdout.startswith("converted") and Image.open(path.with_suffix(".png")).size == (600, 600)
