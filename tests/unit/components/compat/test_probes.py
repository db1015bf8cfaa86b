"""Probe comparison: overlap@k and recall@k by hand, short answers counted as misses, bounded probe sets."""

import pytest

from components.compat.probes import Probes, compare_answers


def test_overlap_and_recall_match_a_hand_count():
    before = [["a", "b", "c"], ["d", "e", "f"]]
    after = [["c", "a", "x"], ["y", "z", "d"]]
    compared = compare_answers(before, after, labels=["a", "f"], k=3)
    assert compared.overlap == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert (compared.recall_before, compared.recall_after) == (1.0, 0.5)
    assert compared.regressed(0.4) and not compared.regressed(0.5)
    assert compared.summary() == "2 probes: overlap@3 0.500, recall@3 1.000 before, 0.500 after"


def test_only_the_top_k_counts_and_a_short_answer_is_no_agreement():
    compared = compare_answers([["a", "b", "c"]], [["a"]], labels=["c"], k=2)
    assert compared.overlap == 0.5 and (compared.recall_before, compared.recall_after) == (0.0, 0.0)


def test_the_answers_must_cover_the_same_probes():
    with pytest.raises(ValueError, match="one answer before, one after and one label each"):
        compare_answers([["a"]], [], labels=["a"], k=1)


def test_a_probe_set_is_a_bounded_sample_of_one_split(tiny_dataset):
    probes = Probes.of_split(tiny_dataset, "test", limit=15)
    assert len(probes.captions) == len(probes.image_ids) == 15
    assert probes == Probes.of_split(tiny_dataset, "test", limit=15)  # drawn with a seed
    with pytest.raises(ValueError, match="1 to 10000 captions"):
        Probes.of_split(tiny_dataset, "test", limit=10**6)
    with pytest.raises(ValueError, match="split 'dev' of .* has no captions to probe with"):
        Probes.of_split(tiny_dataset, "dev")
