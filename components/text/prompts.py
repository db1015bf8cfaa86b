"""Prompt templates for zero-shot classification, per domain; `{}` is replaced by the label."""

from __future__ import annotations

TEMPLATES: dict[str, tuple[str, ...]] = {
    "general": ("a photo of a {}.", "a picture of a {}.", "an image showing a {}.", "a drawing of a {}."),
    "medical": ("a chest x-ray showing {}.", "chest radiograph with {}.", "findings consistent with {}."),
    "remote_sensing": ("an aerial photo of a {}.", "a satellite image of a {}.", "a remote sensing image of {}."),
    "person": ("a photo of a person {}.", "a pedestrian {}."),
}


def prompts(labels: list[str], templates: list[str] | None = None, domain: str = "general") -> list[list[str]]:
    """Per label, its prompts: the given templates, else the domain's."""
    if templates is None:
        if domain not in TEMPLATES:
            raise KeyError(f"unknown domain {domain!r}; choose one of {sorted(TEMPLATES)}")
        templates = list(TEMPLATES[domain])
    if not templates or any("{}" not in t for t in templates):
        raise ValueError("every template must contain {} where the label goes")
    return [[t.format(label) for t in templates] for label in labels]
