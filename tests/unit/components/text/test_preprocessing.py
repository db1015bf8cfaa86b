"""Text preprocessing of the presets: medical reports and plain text."""

import pytest

from components.config import TokenizerConfig
from components.text.preprocessing import DEID, medical, plain
from components.text.tokenizer import train_tokenizer


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
