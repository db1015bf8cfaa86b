"""Domain presets: readers on real-format generated files, text preprocessing, augmentation, the P x K
sampler, and the metrics against brute-force references."""

import random

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from components.config import TokenizerConfig
from components.data.datamodule import EpochPermutationSampler, IdentityBatchSampler
from components.data.generators import generate_domain_dataset
from components.data.manifest import read_manifest, resolve_image
from components.domains import DOMAINS, domain
from components.evaluation.gate import GatePolicy, evaluate_gate
from components.evaluation.person import person_search_metrics
from components.evaluation.zero_shot import zero_shot_metrics
from components.text.preprocessing import DEID, medical, plain
from components.text.tokenizer import train_tokenizer


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


@pytest.mark.parametrize("raw,expected", [
    ("large L pleural eff. w/ blunting.", "large left pleural effusion with blunting."),
    ("b/l haziness c/w edema, no PTX.", "bilateral haziness consistent with edema, no pneumothorax."),
    ("Dr. ___ was notified. Comparison: ____.", f"dr. {DEID} was notified. comparison: {DEID} ."),
    ("? pna", "possible pneumonia"),
    ("Platelets normal", "platelets normal"),  # 'pl' or 'l' inside words are left alone
])
def test_medical_text_preprocessing(raw, expected):
    assert medical(raw) == expected


def test_deid_placeholder_is_one_token():
    config = TokenizerConfig(preprocessing="medical", context_length=24)
    tokenizer = train_tokenizer(["left pleural effusion", "dr was notified"] * 20, config)
    ids = tokenizer(["Dr. ___ was notified"])[0].tolist()
    deid = tokenizer.tokenizer.token_to_id(DEID)
    assert ids.count(deid) == 1 and ids[1:4] != [deid] * 3


def test_plain_preprocessing_folds_case_and_space():
    assert plain("  A  Person\nwearing RED ") == "a person wearing red"


def test_augmentations_are_seeded_and_domain_specific():
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    image.paste((0, 0, 255), (0, 0, 10, 10))
    same = [domain("remote_sensing").augment(image, random.Random("1:7")) for _ in range(2)]
    assert same[0].tobytes() == same[1].tobytes()
    gray = domain("medical").augment(image, random.Random(0))
    r, g, b = gray.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()  # grayscale, no colour jitter
    corners = set()
    for seed in range(40):  # rotations by 90 degrees and flips move the blue corner around
        out = domain("remote_sensing").augment(image, random.Random(seed))
        w, h = out.size
        corners.add(tuple(i for i, (x, y) in enumerate([(1, 1), (w - 2, 1), (1, h - 2), (w - 2, h - 2)])
                          if out.getpixel((x, y))[2] > 200))
    assert len(corners) == 4


def test_identity_batches_hold_p_identities_times_k_images():
    persons = [p for p in range(10) for _ in range(3 if p % 2 else 5)]  # some with fewer than K images
    sampler = IdentityBatchSampler(persons, identities_per_batch=4, images_per_identity=4, seed=0)
    sampler.set_epoch(2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    for batch in batches:
        rows = [key % len(persons) for key in batch]
        assert len(batch) == 16 and all(key // len(persons) == 2 for key in batch)  # keys carry the epoch
        ids = [persons[r] for r in rows]
        assert len(set(ids)) == 4 and all(ids.count(p) == 4 for p in set(ids))
    assert not set(persons[k % len(persons)] for k in batches[0]) & set(persons[k % len(persons)] for k in batches[1])
    assert list(sampler) == batches  # a function of (seed, epoch)
    sampler.set_epoch(3)
    assert list(sampler) != batches
    with pytest.raises(ValueError, match="3 identities"):
        IdentityBatchSampler([0, 1, 2], 4, 2, 0)


def test_epoch_permutation_covers_every_row_once():
    sampler = EpochPermutationSampler(50, seed=3)
    sampler.set_epoch(1)
    keys = list(sampler)
    assert sorted(k - 50 for k in keys) == list(range(50))


def brute_zero_shot(images, labels, classes):
    scores = images @ classes.T
    top1 = [int(scores[i].argmax()) == int(labels[i]) for i in range(len(labels))]
    top5 = [int(labels[i]) in scores[i].topk(5).indices.tolist() for i in range(len(labels))]
    per_class = [sum(t for t, lab in zip(top1, labels.tolist(), strict=True) if lab == c) / labels.tolist().count(c)
                 for c in sorted(set(labels.tolist()))]
    return {"zs_top1": sum(top1) / len(top1), "zs_top5": sum(top5) / len(top5),
            "zs_mean_per_class_recall": sum(per_class) / len(per_class)}


def test_zero_shot_metrics_match_brute_force():
    torch.manual_seed(0)
    images, classes = F.normalize(torch.randn(40, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    labels = torch.randint(0, 6, (40,))
    got, expected = zero_shot_metrics(images, labels, classes)[0], brute_zero_shot(images, labels, classes)
    assert got == pytest.approx(expected)
    assert zero_shot_metrics(classes[labels], labels, classes)[0]["zs_top1"] == 1.0


def brute_person(text, text_ids, images, image_ids):
    totals = {"t2i_r1": 0, "t2i_r5": 0, "t2i_r10": 0, "map": 0.0, "minp": 0.0}
    for q in range(len(text)):
        order = sorted(range(len(images)), key=lambda j: -float(text[q] @ images[j]))
        relevant = [int(image_ids[j] == text_ids[q]) for j in order]
        positions = [i + 1 for i, r in enumerate(relevant) if r]
        for k in (1, 5, 10):
            totals[f"t2i_r{k}"] += positions[0] <= k
        totals["map"] += sum((n + 1) / p for n, p in enumerate(positions)) / len(positions)
        totals["minp"] += len(positions) / positions[-1]
    return {k: v / len(text) for k, v in totals.items()}


def test_person_search_metrics_match_brute_force_including_map_and_minp():
    torch.manual_seed(0)
    images, image_ids = F.normalize(torch.randn(30, 8), dim=-1), torch.randint(0, 8, (30,))
    text, text_ids = F.normalize(torch.randn(25, 8), dim=-1), image_ids[torch.randint(0, 30, (25,))]
    got = person_search_metrics(text, text_ids, images, image_ids, block=7)[0]
    assert got == pytest.approx(brute_person(text, text_ids, images, image_ids))
    perfect = person_search_metrics(images, image_ids, images, image_ids)[0]
    assert perfect["t2i_r1"] == 1.0 and 0 < perfect["minp"] <= 1.0


def test_forgetting_rule_judges_against_the_parent():
    policy = GatePolicy(name="p", forgetting={"general/mean_recall": 0.05})
    assert evaluate_gate(policy, {"general/mean_recall": 0.70}, parent={"general/mean_recall": 0.74}).passed
    failed = evaluate_gate(policy, {"general/mean_recall": 0.60}, parent={"general/mean_recall": 0.74})
    assert not failed.passed and "parent 0.7400 - 0.05" in failed.rules[0].reason
    assert not evaluate_gate(policy, {"general/mean_recall": 0.9}).passed  # unmeasured parent: no pass by default


def test_every_domain_has_its_gate_policy():
    for preset in DOMAINS.values():
        policy = GatePolicy.from_yaml(preset.policy)
        assert policy.name == preset.name and any(m.endswith(preset.primary_metric) for m in policy.floors)
    assert set(DOMAINS) == {"medical", "remote_sensing", "person"}


def test_replay_rows_join_the_training_set_as_their_own_groups_and_identities(tiny_dataset, tmp_path):
    from components.config import preset
    from components.data.datamodule import PairDataModule
    from components.data.transforms import ImageTransform

    people = tmp_path / "people"
    generate_domain_dataset("person", people, images=60)
    config = preset("tiny")
    tokenizer = train_tokenizer(read_manifest(tiny_dataset)["caption"], config.tokenizer)
    data = PairDataModule(str(people / "dataset"), tokenizer, ImageTransform.for_model(config), batch_size=8,
                          images_per_identity=2, replay_dir=str(tiny_dataset), replay_fraction=0.5)
    data.setup()
    domain_rows = len(data.train_set.domain)
    assert len(data.train_set.replay) == domain_rows  # half of the training rows are replayed
    persons, groups = data.train_set.persons, data.train_set.groups
    assert not set(persons[:domain_rows]) & set(persons[domain_rows:])
    assert not set(groups[:domain_rows]) & set(groups[domain_rows:])
    batch = next(iter(data.train_dataloader()))
    assert batch["pixels"].shape[0] == 8 and batch["person_id"].shape == (8,)
