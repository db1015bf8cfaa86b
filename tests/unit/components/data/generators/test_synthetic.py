import numpy as np
import pandas as pd
from PIL import Image

from components.config import SyntheticDataConfig
from components.data.generators.synthetic import COLOURS, generate_dataset
from components.data.manifest import read_manifest


def test_same_seed_same_dataset(tmp_path):
    config = SyntheticDataConfig(seed=7, train_images=30, val_images=5, test_images=5)
    a = generate_dataset(config, tmp_path / "a")
    b = generate_dataset(config, tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    for image in a["image"].unique():
        assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()


def test_counts_splits_and_manifest_columns(tiny_dataset):
    manifest = read_manifest(tiny_dataset)
    images = manifest.drop_duplicates("image_id")
    assert images["split"].value_counts().to_dict() == {"train": 160, "test": 20, "val": 16}
    assert (manifest.groupby("image_id").size() == 5).all()
    assert manifest["sample_id"].is_unique
    assert set(manifest["image"].str.rsplit(".", n=1).str[1]) == {"jpg", "png"}
    for image in images["image"]:
        with Image.open(tiny_dataset / image) as img:
            img.load()
            assert img.size == (64, 64)


def test_held_out_captions_are_unseen_wordings(tiny_dataset):
    manifest = read_manifest(tiny_dataset)
    train = set(manifest.loc[manifest["split"] == "train", "caption"])
    held_out = manifest.loc[manifest["split"] != "train", "caption"]
    assert not held_out.isin(train).any()


def test_captions_name_colours_that_are_drawn(tiny_dataset):
    manifest = read_manifest(tiny_dataset).drop_duplicates("image_id")
    for row in manifest.itertuples():
        pixels = np.asarray(Image.open(tiny_dataset / row.image).convert("RGB")).reshape(-1, 3).astype(int)
        for name, rgb in COLOURS.items():
            present = (np.abs(pixels - np.array(rgb)).max(axis=1) <= 25).sum() >= 20
            assert (name in row.caption.split()) == present, (row.caption, name)
