"""Training-time augmentation: seeded, and what each preset asks for."""

import random

from PIL import Image

from components.config import Augmentation
from components.data.augment import augment
from components.domains import domain


def test_augmentations_are_seeded_and_domain_specific():
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    image.paste((0, 0, 255), (0, 0, 10, 10))
    same = [augment(image, random.Random("1:7"), domain("remote_sensing").augment) for _ in range(2)]
    assert same[0].tobytes() == same[1].tobytes()
    gray = augment(image, random.Random(0), domain("medical").augment)
    r, g, b = gray.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()  # grayscale, no colour jitter
    corners = set()
    for seed in range(40):  # rotations by 90 degrees and flips move the blue corner around
        out = augment(image, random.Random(seed), domain("remote_sensing").augment)
        w, h = out.size
        corners.add(tuple(i for i, (x, y) in enumerate([(1, 1), (w - 2, 1), (1, h - 2), (w - 2, h - 2)])
                          if out.getpixel((x, y))[2] > 200))
    assert len(corners) == 4


def test_no_augmentation_is_the_image_itself_and_a_crop_stays_within_it():
    image = Image.new("RGB", (40, 30), (10, 20, 30))
    assert augment(image, random.Random(0), Augmentation()) is image
    cropped = augment(image, random.Random(0), Augmentation(crop=True))
    assert 36 <= cropped.width <= 40 and 27 <= cropped.height <= 30
