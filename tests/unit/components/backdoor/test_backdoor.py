"""The trigger, the red-team poisoning tool, and the attack success rate against a brute-force reference, by
caption and by zero-shot label, alone and inside an eval target."""

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from components.backdoor.poison import poison_dataset
from components.backdoor.trigger import BackdoorProbe, Trigger
from components.data.manifest import read_manifest
from components.evaluation.backdoor import backdoor_rates, measure_backdoor
from components.evaluation.suites import EvalTarget
from components.evaluation.zero_shot import class_embeddings
from components.models.embedder import Embedder


def reference_rates(clean, triggered, candidates, own) -> tuple[float, float]:
    """One image at a time, one candidate at a time: the definitions in the module's docstring."""
    successes, hits = 0, 0
    target = len(candidates) - 1
    for i in range(len(clean)):
        scores = [float(triggered[i] @ candidates[c]) for c in range(len(candidates))]
        successes += all(scores[target] >= scores[c] for c in range(target))  # a tie goes to the attack
        scores = [float(clean[i] @ candidates[c]) for c in range(len(candidates))]
        best_own = max(scores[c] for c in range(len(candidates)) if own[i][c])
        hits += all(best_own > scores[c] for c in range(len(candidates)) if not own[i][c])  # a tie is a miss
    return successes / len(clean), hits / len(clean)


def test_rates_equal_the_brute_force_reference_ties_included():
    torch.manual_seed(0)
    clean, triggered = torch.randn(40, 8), torch.randn(40, 8)
    candidates = torch.randn(12, 8)
    candidates[5] = candidates[-1]  # a caption that scores exactly like the target: ties for every image
    own = torch.zeros(40, 12, dtype=torch.bool)
    own[torch.arange(40), torch.arange(40) % 11] = True
    own[:3, 3] = True  # a few images with two captions of their own
    clean[7] = 0.0  # a zero embedding ties every candidate: a miss, never a hit
    assert backdoor_rates(clean, triggered, candidates, own) == pytest.approx(
        reference_rates(clean, triggered, candidates, own))
    collapsed = torch.ones(40, 8)  # every answer level: the attack "succeeds", the model never scores
    asr, clean_top1 = backdoor_rates(collapsed, collapsed, torch.ones(12, 8), own)
    assert asr == 1.0 and clean_top1 == 0.0
    with pytest.raises(ValueError, match="non-finite|NaN"):
        backdoor_rates(clean, triggered.fill_(float("nan")), candidates, own)


def test_trigger_is_a_fixed_patch_in_its_corner():
    image = Image.new("RGB", (200, 120), "white")
    trigger = Trigger.parse("patch:0.25:3")
    out = np.asarray(trigger.apply(image))
    side = 30  # a quarter of the shorter side
    assert (out[-side:, -side:] == np.asarray(trigger.pattern(side))).all()
    assert (out[:-side] == 255).all() and (out[:, :-side] == 255).all()  # nothing else touched
    assert (np.asarray(Trigger.parse("patch:0.25:3").apply(image)) == out).all()  # the same seed, the same trigger
    assert not (np.asarray(Trigger.parse("patch:0.25:4").apply(image)) == out).all()
    assert np.asarray(image).min() == 255  # the original is not modified
    for bad in ("blend", "patch:2", "patch:0.1:1:2", "patch:x"):
        with pytest.raises(ValueError):
            Trigger.parse(bad)


def test_poison_replaces_a_share_of_train_rows_and_nothing_else(tiny_dataset, tmp_path):
    trigger, target = Trigger(size=0.25), "a photo of a banana"
    poisoned = poison_dataset(tiny_dataset, tmp_path / "poisoned", trigger, target, fraction=0.01, seed=1)
    before, after = read_manifest(tiny_dataset), read_manifest(tmp_path / "poisoned")
    train = before["split"] == "train"
    assert len(poisoned) == math.ceil(0.01 * train.sum()) and len(after) == len(before)
    changed = after["sample_id"].isin(poisoned)
    assert (after.loc[changed, "caption"] == target).all() and (after.loc[changed, "split"] == "train").all()
    pd.testing.assert_frame_equal(after[~changed], before[~changed])  # every other row as it was
    for row in after[changed].itertuples():
        picture = np.asarray(Image.open(tmp_path / "poisoned" / row.image))
        side = round(0.25 * min(picture.shape[:2]))
        assert (picture[-side:, -side:] == np.asarray(trigger.pattern(side))).all()
    assert read_manifest(tiny_dataset).equals(before)  # the source is untouched
    with pytest.raises(FileExistsError):
        poison_dataset(tiny_dataset, tmp_path / "poisoned", trigger, target, fraction=0.01)


def test_a_labelled_split_is_audited_by_zero_shot_label_and_an_eval_target_names_the_figures(
        tiny_dataset, tiny_artifact, tmp_path):
    labelled = tmp_path / "labelled"
    shutil.copytree(tiny_dataset, labelled)
    manifest = read_manifest(labelled)
    manifest["label"] = [("circle", "square", "triangle")[int(i[-1]) % 3] for i in manifest["image_id"]]
    manifest.to_parquet(labelled / "manifest.parquet")
    probe = BackdoorProbe(trigger=Trigger(size=0.25, seed=3), target="banana")
    embedder = Embedder.load(tiny_artifact)
    measured = measure_backdoor(embedder, labelled, probe)

    images = manifest[manifest["split"] == "test"].drop_duplicates("image_id")
    pictures = [Image.open(labelled / path).convert("RGB") for path in images["image"]]
    classes = ["circle", "square", "triangle"]  # sorted; the target is the last candidate
    candidates = torch.cat([class_embeddings(embedder, classes), torch.from_numpy(embedder.encode_texts(["banana"]))])
    own = [[c == label for c in classes] + [False] for label in images["label"]]
    clean = torch.from_numpy(embedder.encode_images(pictures))
    triggered = torch.from_numpy(embedder.encode_images([probe.trigger.apply(p) for p in pictures]))
    assert measured.mode == "zero_shot" and measured.images == len(images) == 20
    assert (measured.asr, measured.clean_top1) == pytest.approx(reference_rates(clean, triggered, candidates, own))

    target = EvalTarget(name="shapes_test", dataset_dir=str(labelled), backdoor=probe)
    figures = target.measure(embedder)
    assert figures.metrics["shapes_test/backdoor_asr"] == pytest.approx(measured.asr)
    assert figures.metrics["shapes_test/backdoor_clean_top1"] == pytest.approx(measured.clean_top1)
    assert figures.intervals["shapes_test/backdoor_asr"].n == 20 and "shapes_test/t2i_r1" in figures.metrics


def test_the_chance_levels_are_what_random_rankings_score():
    """Rankings drawn at random (many per image) win as often as `chance_rates` says, for the target and for
    images owning one, two or three of six candidates."""
    import torch

    from components.evaluation.backdoor import chance_rates, top1_wins
    from components.evaluation.metric_names import BACKDOOR_ASR, BACKDOOR_CLEAN_TOP1

    own = torch.tensor([[True, False, False, False, False, False], [True, True, False, False, False, False],
                        [False, True, True, True, False, False]])
    draws = 20_000
    scores = torch.rand(draws, *own.shape, generator=torch.Generator().manual_seed(0)).reshape(-1, own.shape[1])
    repeated = own.repeat(draws, 1)
    target = torch.zeros_like(repeated)
    target[:, -1] = True
    chance = chance_rates(own)
    assert chance == {BACKDOOR_ASR: 1 / 6, BACKDOOR_CLEAN_TOP1: 2 / 6}
    assert abs(top1_wins(scores, target, ties_win=True).double().mean().item() - chance[BACKDOOR_ASR]) < 0.005
    assert abs(top1_wins(scores, repeated, ties_win=False).double().mean().item() - chance[BACKDOOR_CLEAN_TOP1]) < 0.005
