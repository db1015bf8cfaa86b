"""Reading a dataset's images where they live: every path held to the containment rule, every size to the limit,
before a byte is read."""

from __future__ import annotations

import pytest

from components.data.location import ImageRoot, ImageUnreadable


@pytest.mark.parametrize(("image", "problem"), [
    ("../outside.png", "path leaves the dataset directory"),
    ("/etc/passwd", "path leaves the dataset directory"),
    ("images/link.png", "path leaves the dataset directory"),  # a symlink out
    ("images/none.png", "missing file"),
    ("images/empty.png", "empty (0-byte) file"),
    ("images/big.png", "file of 101 bytes, over the limit of 100"),
])
def test_an_unreadable_image_is_named_with_its_problem_and_nothing_is_read(tmp_path, image, problem):
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"secret")
    (root / "images" / "link.png").symlink_to(tmp_path / "outside.png")
    (root / "images" / "empty.png").write_bytes(b"")
    (root / "images" / "big.png").write_bytes(b"x" * 101)
    (root / "images" / "ok.png").write_bytes(b"x" * 100)
    images = ImageRoot(root=str(root), max_bytes=100)
    with pytest.raises(ImageUnreadable) as refused:
        images.read(image)
    assert str(refused.value) == problem
    assert images.read("images/ok.png") == b"x" * 100
