"""Poison -> backdoor -> defence, end to end on tiny models: a model pretrained on generated data with a
share of poisoned pairs obeys the trigger, and a `cleanclip` finetune on the clean rows takes that away
while its clean top-1 stays close (`python -m benchmarks.backdoor` is the same at a larger scale)."""

import pytest

from benchmarks.backdoor import attack_and_defend

pytestmark = pytest.mark.slow


def test_cleanclip_finetune_removes_a_planted_backdoor(tmp_path):
    measured = attack_and_defend(tmp_path, train_images=300, fraction=0.03, steps=200, finetune_steps=60,
                                 finetunes=("cleanclip",))
    poisoned, defended = measured["poisoned"], measured["cleanclip"]
    assert poisoned.asr >= 0.5, poisoned  # the backdoor took
    assert defended.asr <= poisoned.asr / 2, (poisoned, defended)
    assert defended.clean_top1 >= poisoned.clean_top1 - 0.1, (poisoned, defended)
    print(f"ASR {poisoned.asr:.3f} -> {defended.asr:.3f}; clean {poisoned.clean_top1:.3f} -> {defended.clean_top1:.3f}")
