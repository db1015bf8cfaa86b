"""The interop environment and open_clip's own outputs, made there once per architecture."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
SITE = next(iter(sorted((ROOT / ".venv-interop" / "lib").glob("python3*/site-packages"))), None) \
    if (ROOT / ".venv-interop" / "lib").is_dir() else None
OPENCLIP_PACKAGE = SITE / "open_clip" if SITE else None
# Captions as they come (punctuation, capitals), one scraped-looking (HTML entity, curly quote, doubled spaces)
# and one far over the context length, so that truncation is compared too.
EXTRA_TEXTS = ["A &amp; B  caf\u00e9\u2019s  Photo!!", "a very long caption " * 30]


@pytest.fixture(scope="session")
def interop_python() -> Path:
    if not INTEROP_PYTHON.is_file():
        message = f"the interop environment is absent ({INTEROP_PYTHON}): `make interop-env` builds it"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the parity tests, never skip them
        pytest.skip(message)
    return INTEROP_PYTHON


@pytest.fixture(scope="session")
def probes(shared_data, tmp_path_factory) -> tuple[list[Path], list[str], Path]:
    """Four real COCO images and their captions (and the two extra texts), with the captions' JSON file."""
    images = sorted((shared_data / "coco-mini" / "val2017").glob("*.jpg"))[:4]
    annotations = json.loads((shared_data / "coco-mini" / "annotations" / "captions_val2017.json").read_text())
    captions = [a["caption"] for a in annotations["annotations"][:6]] + EXTRA_TEXTS
    texts_file = tmp_path_factory.mktemp("probes") / "texts.json"
    texts_file.write_text(json.dumps(captions))
    return images, captions, texts_file
