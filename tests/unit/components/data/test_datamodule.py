"""The training data: samplers that are functions of (seed, epoch), P x K identity batches, replay."""

import pytest

from components.data.datamodule import EpochPermutationSampler, IdentityBatchSampler
from components.data.generators import generate_domain_dataset
from components.data.manifest import read_manifest
from components.text.tokenizer import train_tokenizer


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


def test_replay_rows_join_the_training_set_as_their_own_groups_and_identities(tiny_dataset, tmp_path):
    from components.config import DataSection, preset
    from components.data.datamodule import PairDataModule
    from components.data.transforms import ImageTransform

    people = tmp_path / "people"
    generate_domain_dataset("person", people, images=60)
    config = preset("tiny")
    general = read_manifest(tiny_dataset)
    tokenizer = train_tokenizer(general["caption"], config.tokenizer)
    train = general[general["split"] == "train"]
    refused = train[train["image_id"].isin(train["image_id"].unique()[::2])]  # what validation quarantined
    quarantined = frozenset(refused["sample_id"])
    data = PairDataModule(people / "dataset", tokenizer, ImageTransform.for_model(config), DataSection(
        batch_size=8, images_per_identity=2, replay_fraction=0.5), replay_dir=tiny_dataset,
        replay_exclude=quarantined)
    data.setup()
    domain_rows = len(data.train_set.domain)
    assert len(data.train_set.replay) == min(domain_rows, len(train) - len(refused))  # half, as far as they go
    assert data.train_set.replay.images and not set(data.train_set.replay.images) & set(refused["image"])
    persons, groups = data.train_set.persons, data.train_set.groups
    assert not set(persons[:domain_rows]) & set(persons[domain_rows:])
    assert not set(groups[:domain_rows]) & set(groups[domain_rows:])
    batch = next(iter(data.train_dataloader()))
    assert batch["pixels"].shape[0] == 8 and batch["person_id"].shape == (8,)
