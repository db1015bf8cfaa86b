"""A seeded generator of captioned images whose captions describe what is drawn.

Each scene holds one or two groups of identical shapes; a group has a count, a colour, a shape and a
position (a half of the canvas, or its centre). Captions come from a small grammar with synonyms and
templates, five per image as in COCO. Val/test captions are worded from the same grammar but no
val/test caption string occurs in training, so retrieval on them is measured on unseen wordings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from components.config import SyntheticDataConfig
from components.data.manifest import write_manifest

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
}
SHAPES = {"circle": ("circle", "disc", "round dot"), "square": ("square", "box", "block"),
          "triangle": ("triangle", "triangle", "wedge")}
COUNT_WORDS = {1: ("one", "a single", "a"), 2: ("two", "a pair of", "two"), 3: ("three", "three", "three")}
POSITION_WORDS = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "along the top", "in the upper half"),
    "bottom": ("at the bottom", "along the bottom", "in the lower half"),
    "center": ("in the middle", "in the centre", "in the center"),
}
PAIRED_POSITIONS = (("left", "right"), ("top", "bottom"))
PREFIXES = ("", "a picture of ", "an image showing ", "a scene with ", "a drawing with ")
JOINERS = (" and ", ", and ", " with ")


@dataclass(frozen=True)
class Group:
    count: int
    colour: str
    shape: str
    position: str


def sample_scene(rng: random.Random, two_group_fraction: float) -> tuple[Group, ...]:
    def group(position: str) -> Group:
        return Group(rng.randint(1, 3), rng.choice(list(COLOURS)), rng.choice(list(SHAPES)), position)

    if rng.random() < two_group_fraction:
        first, second = rng.choice(PAIRED_POSITIONS)
        return group(first), group(second)
    return (group(rng.choice(list(POSITION_WORDS))),)


def describe(scene: tuple[Group, ...], rng: random.Random) -> str:
    """One caption of the scene, with a randomly chosen wording."""

    def phrase(g: Group) -> str:
        noun = rng.choice(SHAPES[g.shape])
        noun = noun if g.count == 1 else noun + ("es" if noun.endswith("x") else "s")
        return f"{rng.choice(COUNT_WORDS[g.count])} {g.colour} {noun} {rng.choice(POSITION_WORDS[g.position])}"

    groups = list(scene)
    rng.shuffle(groups)
    body = rng.choice(JOINERS).join(phrase(g) for g in groups)
    return rng.choice(PREFIXES) + body


def draw(scene: tuple[Group, ...], size: int, rng: random.Random) -> Image.Image:
    shade = rng.randint(215, 250)
    image = Image.new("RGB", (size, size), (shade, shade, rng.randint(215, 250)))
    pen = ImageDraw.Draw(image)
    for g in scene:
        for cx, cy in _slots(g, size, rng):
            radius = size * rng.uniform(0.085, 0.11)
            colour = tuple(max(0, min(255, c + rng.randint(-15, 15))) for c in COLOURS[g.colour])
            box = (cx - radius, cy - radius, cx + radius, cy + radius)
            if g.shape == "circle":
                pen.ellipse(box, fill=colour)
            elif g.shape == "square":
                pen.rectangle(box, fill=colour)
            else:
                pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image


def _slots(g: Group, size: int, rng: random.Random) -> list[tuple[float, float]]:
    """Centres for the group's shapes: spread along the long axis of its region, jittered."""
    half, quarter = size / 2, size / 4
    region = {  # (x0, y0, width, height) of the region the group occupies
        "left": (0, 0, half, size), "right": (half, 0, half, size),
        "top": (0, 0, size, half), "bottom": (0, half, size, half),
        "center": (quarter, quarter, half, half),
    }[g.position]
    x0, y0, w, h = region
    jitter = size * 0.03
    slots = []
    for i in range(g.count):
        along = (i + 0.5) / g.count
        if h >= w:
            x, y = x0 + w / 2, y0 + along * h
        else:
            x, y = x0 + along * w, y0 + h / 2
        slots.append((x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter)))
    return slots


def generate_dataset(config: SyntheticDataConfig, dataset_dir: Path) -> pd.DataFrame:
    """Write images and `manifest.parquet` into `dataset_dir`; return the manifest."""
    rng = random.Random(config.seed)
    rows: list[dict] = []
    train_captions: set[str] = set()
    for split, n_images in (("train", config.train_images), ("val", config.val_images), ("test", config.test_images)):
        image_dir = dataset_dir / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        made = 0
        while made < n_images:
            scene = sample_scene(rng, config.two_group_fraction)
            forbidden = train_captions if split != "train" else None
            captions = _captions(scene, config.captions_per_image, rng, forbidden)
            if captions is None:  # every wording of this scene was seen in training: draw another scene
                continue
            if split == "train":
                train_captions.update(captions)
            image_id = f"syn-{split}-{made:05d}"
            ext = "jpg" if made % 2 == 0 else "png"  # both formats users have
            relative = f"images/{split}/{image_id}.{ext}"
            image = draw(scene, config.image_size, rng)
            image.save(dataset_dir / relative, **({"quality": 95} if ext == "jpg" else {}))
            rows += [
                {"sample_id": f"{image_id}-{k}", "image": relative, "caption": caption, "image_id": image_id,
                 "split": split, "source": "synthetic", "license": "CC0-1.0"}
                for k, caption in enumerate(captions)
            ]
            made += 1
    frame = pd.DataFrame(rows)
    write_manifest(frame, dataset_dir)
    return frame


def _captions(scene, n: int, rng: random.Random, forbidden: set[str] | None) -> list[str] | None:
    """`n` distinct captions where the grammar allows (else repeats), none in `forbidden`."""
    found: list[str] = []
    for _ in range(20 * n):
        caption = describe(scene, rng)
        if forbidden is not None and caption in forbidden:
            continue
        if caption not in found:
            found.append(caption)
        if len(found) == n:
            return found
    if not found:
        return None
    return [found[i % len(found)] for i in range(n)]
