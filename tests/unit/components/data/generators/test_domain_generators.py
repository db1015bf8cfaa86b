"""Domain data generated in its native format imports through the domain's reader."""

import pytest
from PIL import Image

from components.data.generators import generate_domain_dataset
from components.data.manifest import read_manifest, resolve_image
from components.domains import DOMAINS


@pytest.fixture(scope="module", params=sorted(DOMAINS))
def generated(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    return request.param, generate_domain_dataset(request.param, directory, images=60), directory / "dataset"


def test_generated_data_imports_through_the_domain_reader(generated):
    name, frame, dataset = generated
    manifest = read_manifest(dataset)
    assert len(manifest) == len(frame) and set(manifest["split"]) == {"train", "val", "test"}
    assert all(resolve_image(dataset, p).is_file() for p in manifest["image"])
    assert manifest["caption"].str.len().min() >= 10
    if name == "medical":
        assert set(manifest["label"]) == {"atelectasis", "cardiomegaly", "consolidation", "edema", "pleural effusion"}
        source = dataset.parent / "source"
        assert list(source.rglob("*.dcm")) and all(p.endswith(".png") for p in manifest["image"]
                                                  if "d0000000" in p)  # DICOM windowed to PNG on import
        assert not manifest["caption"].str.contains("EXAMINATION").any()  # sectioned: findings + impression
        assert manifest["caption"].str.contains("___").all()  # de-identification blanks survive import
        assert Image.open(resolve_image(dataset, manifest["image"].iloc[0])).mode in ("L", "RGB")
    if name == "person":
        persons = manifest.groupby("split")["person_id"].apply(set)
        assert not persons["train"] & persons["test"]  # identities are disjoint across splits
        assert manifest.groupby("person_id")["image_id"].nunique().min() >= 2
