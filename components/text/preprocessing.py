"""Domain text normalisation, applied by the tokenizer to every text (training captions, evaluation
queries, served requests) when a model's `TokenizerConfig.preprocessing` names it."""

from __future__ import annotations

import re
import string
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


def _basic_clean(text: str) -> str:
    """open_clip's clean-up before tokenizing: broken Unicode repaired (ftfy), HTML entities decoded (twice, as
    captions scraped from the web are often escaped twice), white space folded."""
    import html

    import ftfy

    return _fold(html.unescape(html.unescape(ftfy.fix_text(text))))


def openclip_lower(text: str) -> str:
    """open_clip's `lower` clean-up, which its CLIP tokenizer applies."""
    return _basic_clean(text).lower()


def openclip_whitespace(text: str) -> str:
    """open_clip's `whitespace` clean-up, the default for Hugging Face tokenizers in open_clip models."""
    return _basic_clean(text)


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def openclip_canonicalize(text: str) -> str:
    """open_clip's (and big_vision's) `canonicalize` clean-up for SigLIP: punctuation removed, lower case."""
    return _fold(_basic_clean(text).replace("_", " ").translate(_PUNCTUATION).lower())


PREPROCESSORS: dict[str, Callable[[str], str]] = {
    "medical": medical, "plain": plain, "openclip_lower": openclip_lower, "openclip_whitespace": openclip_whitespace,
    "openclip_canonicalize": openclip_canonicalize}


def preprocessor(name: str | None) -> Callable[[str], str]:
    if name is None:
        return str
    if name not in PREPROCESSORS:
        raise ValueError(f"unknown text preprocessing {name!r}; choose from {sorted(PREPROCESSORS)}")
    return PREPROCESSORS[name]
