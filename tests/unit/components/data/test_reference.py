"""A dataset reference from a form or a schedule: its hash is checked, and what it names on disk is one
segment whatever its reference holds."""

import pytest
from pydantic import ValidationError

from components.data.reference import DatasetRef


@pytest.mark.parametrize("hash_", ["../../etc.dir", "/abs", "ab.dir", "0123456789abcdef0123456789abcdef/x.dir"])
def test_a_hash_that_is_no_dvc_hash_is_refused(hash_):
    with pytest.raises(ValidationError, match="hash"):
        DatasetRef(path="d", hash=hash_)


@pytest.mark.parametrize("ref", ["..", "../../outside@1", "/etc/passwd", "a/b@c", "x" * 5000])
def test_the_key_is_one_safe_segment_for_any_reference(ref):
    key = DatasetRef(path="d", ref=ref).key
    assert "/" not in key and ".." not in key and len(key) <= 32
    assert DatasetRef(path="d", ref=ref).key == key != DatasetRef(path="d", ref=ref + "!").key


def test_a_versioned_key_is_its_md5():
    ref = DatasetRef(path="d", ref="d@1", hash="0123456789abcdef0123456789abcdef.dir")
    assert ref.versioned and ref.key == "0123456789abcdef0123456789abcdef"
    assert DatasetRef(path="d").ref == "d" and not DatasetRef(path="d").versioned


def test_records_keep_a_versions_reference_or_a_directorys_name_never_its_local_path():
    unversioned = DatasetRef(path="/home/ana/data/Flickr 8k!")
    assert unversioned.label == "Flickr-8k" and unversioned.recorded == "Flickr-8k (unversioned)"
    versioned = DatasetRef(path="/home/ana/.alignops/datasets/0a1b", ref="coco@4f2e9c1",
                           hash="0123456789abcdef0123456789abcdef.dir")
    assert versioned.label == "coco" and versioned.recorded == "coco@4f2e9c1"
    assert DatasetRef(path="/").label == "data"


def test_a_reference_names_a_directory_or_a_version():
    assert not DatasetRef(ref="coco@4f2e9c1").resolved and DatasetRef(path="/d").resolved
    with pytest.raises(ValidationError, match="needs a directory .* or a version"):
        DatasetRef(ref="coco")
