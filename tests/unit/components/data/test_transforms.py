"""Large JPEGs decode at a reduced scale (libjpeg's DCT scaling) that still leaves twice the pixels the fit
needs: the square the model sees stays within two grey levels of a full decode."""

import math

import numpy as np
import pytest
from corpus import jpeg_bytes, photo, png_bytes
from PIL import Image

from components.data.transforms import ImageTransform

MEAN_STD = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.mark.parametrize("fit, size, dims, scale", [
    ("crop", 224, (2000, 1500), 2),
    ("crop", 224, (4000, 3000), 4),
    ("crop", 64, (2000, 1500), 4),  # 1/8 would leave enough pixels, but is cruder
    ("pad", 64, (1500, 2000), 4),  # pad fits the long side
    ("pad", 224, (600, 400), 1),  # 600 / 2 < 2 x 224: decoded whole
])
def test_a_large_jpeg_decodes_at_the_scale_the_fit_allows(fit, size, dims, scale, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(photo(*dims), quality=92))
    transform = ImageTransform(size, *MEAN_STD, fit=fit)
    drafted = transform.draft(Image.open(path))
    assert drafted.size == (math.ceil(dims[0] / scale), math.ceil(dims[1] / scale))
    assert (min if fit == "crop" else max)(drafted.size) >= 2 * size
    decoded = Image.open(path)
    decoded.load()  # already decoded: the draft leaves it whole
    full = transform.fit(decoded)
    assert transform.draft(decoded).size == dims
    assert np.abs(transform.fit(path).astype(int) - full).max() <= 2


def test_other_formats_decode_whole(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(photo(2000, 1500)))
    assert ImageTransform(64, *MEAN_STD).draft(Image.open(path)).size == (2000, 1500)


@pytest.mark.parametrize("dims", [(640, 427), (427, 640), (333, 500), (224, 300)])
def test_the_centre_crop_rounds_as_torchvision_does(dims):
    """torchvision's Resize truncates the long side (int) and CenterCrop rounds its offset half to even:
    open_clip's models were trained on those pixels."""
    image = photo(*dims)
    short, long = min(dims), max(dims)
    resized_long = int(224 * long / short)
    size = (224, resized_long) if dims[0] <= dims[1] else (resized_long, 224)
    resized = image.resize(size, Image.Resampling.BICUBIC) if size != dims else image
    left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    expected = np.asarray(resized.crop((left, top, left + 224, top + 224)))
    assert np.array_equal(ImageTransform(224, *MEAN_STD).fit(image), expected)


def test_squash_resizes_to_the_square_without_cropping():
    image = photo(300, 200)
    expected = np.asarray(image.resize((64, 64), Image.Resampling.BICUBIC))
    assert np.array_equal(ImageTransform(64, *MEAN_STD, fit="squash").fit(image), expected)


def test_a_full_decode_is_kept_where_pixels_must_equal_another_librarys(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(photo(2000, 1500), quality=92))
    assert ImageTransform(64, *MEAN_STD, reduced_decode=False).draft(Image.open(path)).size == (2000, 1500)
