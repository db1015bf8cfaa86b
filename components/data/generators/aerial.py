"""Aerial tiles with remote-sensing captions, written as a Karpathy JSON (as RSICD, RSITMD and UCM ship).

A tile has a land-use class, a density and an optional feature (a river, a road, a pond); its five
captions say so in RSICD's plain style. Nothing is described by position, so the 90-degree rotations and
flips used as augmentation keep every caption true.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 64
SCENES = ("residential", "forest", "farmland", "parking", "airport", "desert")
FEATURES = (None, "river", "road", "pond")
NOUNS = {
    "residential": ("houses", "buildings", "residential buildings"),
    "forest": ("trees", "green trees", "woods"),
    "farmland": ("fields", "farmland", "pieces of farmland"),
    "parking": ("cars", "parked cars", "vehicles"),
    "airport": ("planes", "airplanes", "aircraft"),
    "desert": ("dunes", "sand dunes", "ridges of sand"),
}
DENSITY_WORDS = {"dense": ("many", "lots of", "densely arranged"), "sparse": ("a few", "some", "sparse")}
FEATURE_WORDS = {"river": ("a river", "a winding river"), "road": ("a road", "a straight road"),
                 "pond": ("a pond", "a small pond")}
TEMPLATES = ("{d} {n}{f}.", "there are {d} {n}{f}.", "this is an aerial image of {d} {n}{f}.",
             "{d} {n} can be seen{f}.", "an area with {d} {n}{f}.")
GROUND = {"residential": (150, 150, 140), "forest": (70, 110, 60), "farmland": (160, 170, 100),
          "parking": (110, 110, 110), "airport": (140, 140, 130), "desert": (215, 190, 140)}


def _objects(pen: ImageDraw.ImageDraw, scene: str, count: int, rng: random.Random) -> None:
    for _ in range(count):
        x, y = rng.uniform(2, SIZE - 8), rng.uniform(2, SIZE - 8)
        if scene == "residential":
            pen.rectangle((x, y, x + 5, y + 5), fill=rng.choice([(180, 70, 60), (200, 200, 195), (120, 80, 70)]))
        elif scene == "forest":
            pen.ellipse((x, y, x + 7, y + 7), fill=(30, rng.randint(70, 100), 30))
        elif scene == "parking":
            pen.rectangle((x, y, x + 3, y + 6), fill=rng.choice([(220, 30, 30), (240, 240, 240), (30, 60, 200)]))
        elif scene == "airport":
            pen.polygon([(x + 4, y), (x + 5, y + 9), (x, y + 5), (x + 9, y + 5)], fill=(245, 245, 245))
        elif scene == "desert":
            pen.arc((x - 4, y, x + 10, y + 8), 180, 360, fill=(170, 140, 90), width=2)
        else:  # farmland: fields as coloured strips
            pen.rectangle((x, 0, x + 6, SIZE), fill=(rng.randint(90, 200), rng.randint(150, 200), 60))


def draw_tile(scene: str, density: str, feature: str | None, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), GROUND[scene])
    pen = ImageDraw.Draw(image)
    if scene == "airport":
        pen.rectangle((0, 28, SIZE, 36), fill=(70, 70, 70))
    _objects(pen, scene, {"dense": 28, "sparse": 6}[density] // (3 if scene == "farmland" else 1), rng)
    if feature == "river":
        pen.line([(0, rng.uniform(10, 54)), (32, rng.uniform(10, 54)), (64, rng.uniform(10, 54))], fill=(40, 90, 170),
                 width=6)
    elif feature == "road":
        x = rng.uniform(10, 54)
        pen.line([(x, 0), (x, SIZE)], fill=(60, 60, 60), width=4)
    elif feature == "pond":
        x, y = rng.uniform(8, 40), rng.uniform(8, 40)
        pen.ellipse((x, y, x + 16, y + 12), fill=(40, 90, 170))
    return image


def describe(scene: str, density: str, feature: str | None, rng: random.Random) -> str:
    tail = "" if feature is None else rng.choice((" near ", " beside ", " and ")) + rng.choice(FEATURE_WORDS[feature])
    return rng.choice(TEMPLATES).format(d=rng.choice(DENSITY_WORDS[density]), n=rng.choice(NOUNS[scene]), f=tail)


def generate_karpathy(root: Path, images_per_split: dict[str, int], seed: int = 0,
                      dataset: str = "rsicd") -> Path:
    """Write `images/` and `dataset_<name>.json`; returns the JSON's path."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, n = [], 0
    for split, count in images_per_split.items():
        for _ in range(count):
            scene, density, feature = rng.choice(SCENES), rng.choice(("dense", "sparse")), rng.choice(FEATURES)
            filename = f"{scene}_{n:05d}.jpg"
            draw_tile(scene, density, feature, rng).save(root / "images" / filename, quality=95)
            sentences = [{"raw": describe(scene, density, feature, rng), "sentid": 5 * n + k} for k in range(5)]
            images.append({"filepath": "images", "filename": filename, "imgid": n, "split": split,
                           "sentences": sentences})
            n += 1
    path = root / f"dataset_{dataset}.json"
    path.write_text(json.dumps({"dataset": dataset, "images": images}))
    return path
