"""Domain text normalisation, applied by the tokenizer to every text (training captions, evaluation
queries, served requests) when a model's `TokenizerConfig.preprocessing` names it."""

from __future__ import annotations

import re
from collections.abc import Callable

DEID = "[DEID]"  # MIMIC's de-identification blanks (`___`) become this single token

# Radiology shorthand -> words (whole tokens, case-insensitive); the list users extend for their reports.
ABBREVIATIONS = {
    "b/l": "bilateral", "w/": "with", "w/o": "without", "c/w": "consistent with", "r/o": "rule out",
    "eff.": "effusion", "eff": "effusion", "ptx": "pneumothorax", "pna": "pneumonia", "chf": "heart failure",
    "mod": "moderate", "lg": "large", "sm": "small", "l": "left", "r": "right", "sob": "shortness of breath",
    "y/o": "year old", "?": "possible", "lat": "lateral", "pa": "posteroanterior", "ap": "anteroposterior",
}
_TOKEN = re.compile(r"(?<!\S)(" + "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True))
                    + r")(?=[\s,;:]|\.?(?:\s|$))", re.IGNORECASE)
_BLANKS = re.compile(r"_{2,}")


def _fold(text: str) -> str:
    return " ".join(text.split())


def medical(text: str) -> str:
    """De-identification blanks to one placeholder, abbreviations expanded, white space folded."""
    text = _BLANKS.sub(f" {DEID} ", text)
    text = _TOKEN.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    return _fold(text).lower().replace(DEID.lower(), DEID)


def plain(text: str) -> str:
    """Lower case, white space folded (RSICD / CUHK-PEDES captions vary in both)."""
    return _fold(text).lower()


PREPROCESSORS: dict[str, Callable[[str], str]] = {"medical": medical, "plain": plain}


def preprocessor(name: str | None) -> Callable[[str], str]:
    if name is None:
        return str
    if name not in PREPROCESSORS:
        raise ValueError(f"unknown text preprocessing {name!r}; choose from {sorted(PREPROCESSORS)}")
    return PREPROCESSORS[name]
