"""Duplicates and leakage on real photographs: resized and re-encoded copies of coco-mini images are found,
and nothing else is."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from components.curation.curate import described
from components.curation.decide import Fingerprints, Reference, decide
from components.curation.hashing import FINGERPRINT_BYTES, fingerprints, hash_matches
from components.curation.rules import CurationRules
from components.data.location import ImageRoot


def photos(shared_data: Path, count: int) -> list[Path]:
    return sorted((shared_data / "coco-mini" / "val2017").glob("*.jpg"))[:count]


def copies(originals: list[Path], out: Path) -> list[Path]:
    """Each original once more: odd ones resized to 60% and saved as JPEG at quality 60, even ones re-encoded
    losslessly as PNG at their own size."""
    made = []
    for i, path in enumerate(originals):
        image = Image.open(path).convert("RGB")
        if i % 2:
            target = out / f"copy-{i}.jpg"
            image.resize((image.width * 3 // 5, image.height * 3 // 5)).save(target, quality=60)
        else:
            target = out / f"copy-{i}.png"
            image.save(target)
        made.append(target)
    return made


def manifest(images: list[Path], splits: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(images))], "image": [p.name for p in images],
                         "caption": [f"caption {i}" for i in range(len(images))],
                         "image_id": [p.name for p in images], "split": splits})


def prints_of(paths: list[Path]) -> Fingerprints:
    sha256, hashes, _ = fingerprints(ImageRoot(root="/"), [str(p.resolve().relative_to("/")) for p in paths])
    return Fingerprints([p.name for p in paths], sha256, hashes)


def test_copies_found_and_nothing_else(shared_data, tmp_path):
    originals = photos(shared_data, 40)
    made = copies(originals, tmp_path)
    every = originals + made
    pairs = {tuple(sorted(pair)) for pair in hash_matches(prints_of(every).hashes, prints_of(every).hashes,
                                                   CurationRules().hash_distance)
             if pair[0] != pair[1]}
    assert pairs == {(i, i + len(originals)) for i in range(len(originals))}


def test_dedup_drops_each_copy_once_and_counts_add_up(shared_data, tmp_path):
    originals = photos(shared_data, 30)
    made = copies(originals[:10], tmp_path)
    exact = tmp_path / "exact.jpg"
    exact.write_bytes(originals[11].read_bytes())  # the same bytes under another name
    every = originals + made + [exact]
    rows = manifest(every, ["train"] * len(every))
    rows = pd.concat([rows, rows.iloc[[3]].assign(sample_id="again", caption="Caption 3.")], ignore_index=True)
    decision = decide(rows, prints_of(every), None, CurationRules(dedup=True),
                      Reference(images=Fingerprints([], [], np.zeros((0, FINGERPRINT_BYTES), np.uint8))))
    dropped = rows.assign(rule=decision.rule).query("rule != ''")
    assert set(dropped.loc[dropped["rule"] == "near_duplicate_image", "image_id"]) == {p.name for p in made}
    assert dropped.loc[dropped["rule"] == "duplicate_image", "image_id"].tolist() == ["exact.jpg"]
    assert dropped.loc[dropped["rule"] == "duplicate_caption", "sample_id"].tolist() == ["again"]
    assert len(rows) == (decision.rule == "").sum() + len(dropped) and len(dropped) == 12


def test_planted_leakage_is_found(shared_data, tmp_path):
    originals = photos(shared_data, 20)
    planted = copies(originals[15:17], tmp_path)  # two test images, resized or re-encoded, put in train
    train, test = originals[:15] + planted, originals[15:]
    rows = manifest(train + test, ["train"] * len(train) + ["test"] * len(test))
    specific = "a man in a red shirt holds a surfboard beside a yellow bus"
    rows.loc[18, "caption"] = specific
    rows.loc[3, "caption"] = "  A man in a RED shirt holds a surfboard beside a yellow bus. "  # retyped into train
    for generic in (4, 5, 17, 19):  # one generic caption on two train photos and two different test photos
        rows.loc[generic, "caption"] = "A dog in a field ."
    guarded = rows[rows["split"] == "test"]
    reference = Reference(images=prints_of(test), captions=described(guarded, "0"))
    decision = decide(rows, prints_of(train + test), None, CurationRules(), reference)
    leaked = rows.loc[decision.rule == "leakage", "image_id"]
    assert set(leaked) == {p.name for p in planted} | {rows.loc[3, "image_id"]}
    assert rows.loc[decision.shared_caption, "sample_id"].tolist() == ["s4", "s5"]  # reported, kept
    assert (decision.rule[[4, 5]] == "").all()
    assert not (decision.rule[rows["split"] == "test"] != "").any()  # the yardstick is never touched
    dropping = decide(rows, prints_of(train + test), None, CurationRules(drop_shared_captions=True), reference)
    assert (dropping.rule[[4, 5]] == "shared_caption").all() and set(rows.loc[dropping.rule == "leakage",
                                                                              "image_id"]) == set(leaked)


@pytest.mark.parametrize("sources", [False, True])
def test_keep_fraction_keeps_the_best_of_each_source(sources):
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(50)], "image": [f"{i}.jpg" for i in range(50)],
                         "caption": [f"c{i}" for i in range(50)], "image_id": [f"{i}.jpg" for i in range(50)],
                         "split": ["train"] * 45 + ["test"] * 5})
    if sources:
        rows["source"] = ["web"] * 30 + ["synthetic"] * 20
    scores = rng.uniform(-1, 1, 50)
    scores[[1, 2]] = scores[0]  # ties are broken by manifest order
    images = Fingerprints(rows["image_id"].tolist(), [f"sha{i}" for i in range(50)],
                          rng.integers(0, 256, (50, FINGERPRINT_BYTES), dtype=np.uint8))
    no_reference = Reference(images=Fingerprints([], [], np.zeros((0, FINGERPRINT_BYTES), np.uint8)))
    decision = decide(rows, images, scores, CurationRules(keep_fraction=0.3), no_reference)
    groups = rows.assign(score=scores, rule=decision.rule)[rows["split"] == "train"].groupby(
        rows.get("source", pd.Series("all", index=rows.index)))
    for source, group in groups:
        expected = group.sort_values("score", ascending=False, kind="stable").head(int(np.ceil(0.3 * len(group))))
        assert set(group.loc[group["rule"] == "", "sample_id"]) == set(expected["sample_id"])
        assert decision.score_thresholds[source] == expected["score"].min()
    assert (decision.rule[rows["split"] == "test"] == "").all()
    by_score = decide(rows, images, scores, CurationRules(min_score=0.2), no_reference)
    assert ((by_score.rule == "low_score") == ((scores < 0.2) & (rows["split"] == "train"))).all()


def test_ten_thousand_copies_of_one_picture_stay_one_cluster_with_bounded_pairs():
    """A range search would pair every copy with every other (10⁸ pairs); the bounded search keeps 32 per
    copy, and the cluster still links up: one image kept, every other copy dropped."""
    rng = np.random.default_rng(0)
    blank = rng.integers(0, 256, FINGERPRINT_BYTES, dtype=np.uint8)
    hashes = np.tile(blank, (10_000, 1))
    hashes[::7, 0] ^= 1  # some copies a bit apart: still copies
    distinct = rng.integers(0, 256, (50, FINGERPRINT_BYTES), dtype=np.uint8)
    every = np.concatenate([hashes, distinct])
    pairs = hash_matches(every, every, CurationRules().hash_distance)
    assert len(pairs) <= 32 * len(every)
    ids = [f"i{n}" for n in range(len(every))]
    images = Fingerprints(ids, [f"sha{n}" for n in range(len(every))], every)
    rows = pd.DataFrame({"sample_id": ids, "image": ids, "caption": ids, "image_id": ids, "split": "train"})
    empty = Fingerprints([], [], np.zeros((0, FINGERPRINT_BYTES), np.uint8))
    decision = decide(rows, images, None, CurationRules(dedup=True), Reference(images=empty))
    assert (decision.rule == "near_duplicate_image").sum() == 9_999 and (decision.rule == "").sum() == 51
