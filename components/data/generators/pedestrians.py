"""Pedestrian figures with identities and attribute descriptions, written as CUHK-PEDES JSON
(`split, id, file_path, captions[]`). An identity is a combination of clothing and carried items; each
appears in several images (pose, scale, background differ), with two captions per image. Splits hold
disjoint identities, as person-search benchmarks do.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 32, 64
COLOURS = {"red": (200, 40, 40), "blue": (40, 70, 200), "green": (40, 150, 60), "black": (25, 25, 25),
           "white": (235, 235, 235), "yellow": (230, 200, 40)}
BAGS = (None, "backpack", "handbag")
TOP_WORDS = ("shirt", "t-shirt", "top", "jacket")
BOTTOM_WORDS = ("pants", "trousers", "jeans")
OPENERS = ("a person wearing", "the pedestrian is wearing", "a man in", "this woman wears", "someone dressed in")


def draw_person(top: str, bottom: str, bag: str | None, bag_colour: str, rng: random.Random) -> Image.Image:
    background = tuple(rng.randint(120, 190) for _ in range(3))
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    pen = ImageDraw.Draw(image)
    cx, scale = WIDTH / 2 + rng.uniform(-3, 3), rng.uniform(0.85, 1.0)
    top_y = HEIGHT * (1 - scale) / 2 + 2

    def y(f: float) -> float:
        return top_y + f * HEIGHT * scale

    pen.ellipse((cx - 5, y(0.0), cx + 5, y(0.16)), fill=(225, 185, 150))  # head
    pen.rectangle((cx - 8, y(0.17), cx + 8, y(0.52)), fill=COLOURS[top])  # torso
    stride = rng.uniform(0, 4)
    pen.rectangle((cx - 7 - stride, y(0.52), cx - 1, y(0.95)), fill=COLOURS[bottom])  # legs
    pen.rectangle((cx + 1, y(0.52), cx + 7 + stride, y(0.95)), fill=COLOURS[bottom])
    if bag == "backpack":
        pen.rectangle((cx + 6, y(0.2), cx + 12, y(0.45)), fill=COLOURS[bag_colour])
    elif bag == "handbag":
        pen.rectangle((cx - 14, y(0.45), cx - 8, y(0.58)), fill=COLOURS[bag_colour])
    return image


def describe(top: str, bottom: str, bag: str | None, bag_colour: str, rng: random.Random) -> str:
    text = f"{rng.choice(OPENERS)} a {top} {rng.choice(TOP_WORDS)} and {bottom} {rng.choice(BOTTOM_WORDS)}"
    if bag:
        text += f", carrying a {bag_colour} {bag}"
    return text + "."


def generate_pedes(root: Path, identities_per_split: dict[str, int], images_per_identity: int = 3,
                   seed: int = 0) -> Path:
    """Write `imgs/` and `reid_raw.json` (CUHK-PEDES layout); returns the JSON's path."""
    rng = random.Random(seed)
    looks = [(t, b, bag, c) for t, b, bag, c in itertools.product(COLOURS, COLOURS, BAGS, ("black", "red", "blue"))
             if t != b and (bag is not None or c == "black")]
    rng.shuffle(looks)
    needed = sum(identities_per_split.values())
    if needed > len(looks):
        raise ValueError(f"at most {len(looks)} distinct identities can be generated, not {needed}")
    records, person = [], 0
    for split, count in identities_per_split.items():
        for _ in range(count):
            look = looks[person]
            for k in range(images_per_identity):
                relative = f"imgs/{split}/{person:04d}_{k}.jpg"
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                draw_person(*look, rng).save(root / relative, quality=95)
                records.append({"split": split, "id": person, "file_path": relative,
                                "captions": [describe(*look, rng) for _ in range(2)]})
            person += 1
    path = root / "reid_raw.json"
    path.write_text(json.dumps(records))
    return path
