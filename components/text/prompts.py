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
    for i, template in enumerate(templates or [None]):
        check_template(template, f"templates[{i}]")
    # A plain replacement, never str.format: a template is user input, and format specs such as
    # "{:>100000000}" would allocate on the server's behalf.
    return [[t.replace("{}", label) for t in templates] for label in labels]


def check_template(template: object, where: str = "template") -> str:
    """A template holds exactly one bare `{}` where the label goes, and no other brace."""
    if not isinstance(template, str) or template.count("{}") != 1 or \
            template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
        raise ValueError(f"{where} must be a string with exactly one {{}} where the label goes, and no other "
                         "braces (no names or format specs)")
    return template
