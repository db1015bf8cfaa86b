"""A model leaving alignops: one of three formats written into a new folder, with a model card (`README.md`,
where Hugging Face and most hubs look for one) that says what it is, where it came from and how it was judged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from components.interop.hf import PREPROCESSING_NORMALIZERS, export_hf, save_hf_tokenizer
from components.interop.onnx import export_onnx
from components.interop.openclip import export_openclip
from components.models.artifact import ModelArtifact
from core.digest import sha256_file

Format = Literal["open_clip", "hf", "onnx"]
CARD_FILE = "README.md"
ALIGNOPS_CONFIG = "alignops_config.json"


def _onnx_folder(artifact: ModelArtifact, out: Path) -> list[Path]:
    """The graphs, with what a runtime needs around them: our config (preprocessing) and the tokenizer."""
    (out / ALIGNOPS_CONFIG).write_text(artifact.config.model_dump_json(indent=2))
    return [*export_onnx(artifact, out), out / ALIGNOPS_CONFIG, *save_hf_tokenizer(artifact, out)]


EXPORTERS: dict[str, Callable[[ModelArtifact, Path], list[Path]]] = {
    "open_clip": export_openclip, "hf": export_hf, "onnx": _onnx_folder}


def export(artifact: ModelArtifact, format_: Format, out: Path, ref: str, record=None) -> list[Path]:
    """Write `artifact` as `format_` into `out` (new or empty), then its card. `record` is the registry's
    `VersionRecord` (metrics, gate verdict, lineage) where the model is a registered version."""
    if format_ not in EXPORTERS:
        raise ValueError(f"unknown export format {format_!r}; choose from {sorted(EXPORTERS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: name a new one")
    out.mkdir(parents=True, exist_ok=True)
    try:
        written = EXPORTERS[format_](artifact, out)
    except Exception:
        for path in out.iterdir():  # nothing half-written is left to be taken for an export
            path.unlink()
        raise
    (out / CARD_FILE).write_text(model_card(artifact, format_, ref, record, sorted(set(written))))
    return sorted({*written, out / CARD_FILE})


def model_card(artifact: ModelArtifact, format_: str, ref: str, record, files: list[Path]) -> str:
    config, lineage = artifact.config, artifact.lineage
    v, t = config.vision, config.text
    lines = [f"# {ref} ({format_} export)", "",
             f"A {config.family} dual encoder exported by alignops. Embedding size {config.embed_dim}.", "",
             "| part | |", "|---|---|",
             f"| image tower | {v.kind}, width {v.width}, {v.layers} layers, {v.heads} heads, patch {v.patch_size}, "
             f"{v.hidden_act or 'default activation'} |",
             f"| text tower | {t.kind}, width {t.width}, {t.layers} layers, {t.heads} heads |",
             f"| images | {v.image_size} px, fit {config.image_fit}, mean {list(config.image_mean)}, "
             f"std {list(config.image_std)}, bicubic |",
             f"| texts | vocabulary {config.tokenizer.vocab_size}, context {config.tokenizer.context_length} tokens, "
             f"clean-up {config.tokenizer.preprocessing or 'none'} |", ""]
    lines += _lineage(lineage) + _evaluation(record, lineage.metrics) + _notes(artifact, format_)
    lines += ["## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {p.name} | `{sha256_file(p)}` |" for p in files if p.is_file()]
    return "\n".join(lines) + "\n"


def _lineage(lineage) -> list[str]:
    lines = ["## Lineage", ""]
    facts = {"parent model": lineage.parent_model, "code revision": lineage.code_revision,
             "config hash": lineage.config_hash}
    lines += [f"- {name}: `{value}`" for name, value in facts.items() if value]
    lines += [f"- dataset ({role}): `{ref}` (DVC hash `{lineage.dataset_hashes.get(role, '?')}`)"
              for role, ref in lineage.datasets.items()]
    source = lineage.training.get("imported_from")
    if isinstance(source, dict) and "format" in source:
        lines.append(f"- imported from {source['format']} `{source['architecture']}`: " + ", ".join(
            f"{name} sha256 `{digest}`" for name, digest in source.get("files", {}).items()))
    return lines + ([] if len(lines) > 2 else ["- none recorded"]) + [""]


def _evaluation(record, metrics: dict[str, float]) -> list[str]:
    lines = ["## Evaluation", ""]
    metrics = (record.metrics if record is not None else None) or metrics
    gate = record.gate if record is not None else None
    if gate is None:
        lines.append("Gate verdict: none recorded (not judged by a gate).")
    else:
        lines.append(f"Gate verdict: **{'passed' if gate.passed else 'failed'}** under policy `{gate.policy}`.")
        lines += [f"- {'✓' if rule.passed else '✗'} {rule.rule}: {rule.reason}" for rule in gate.rules]
    if metrics:
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
    return lines + [""]


def _notes(artifact: ModelArtifact, format_: str) -> list[str]:
    """What the format cannot carry, so a user reproduces our embeddings outside alignops."""
    config, notes = artifact.config, []
    preprocessing = config.tokenizer.preprocessing
    if preprocessing and format_ != "open_clip":
        kept = "its normaliser does the rest" if preprocessing in PREPROCESSING_NORMALIZERS else "apply it yourself"
        notes.append(f"Texts are cleaned (`{preprocessing}`) before tokenizing; the tokenizer here does not repair "
                     f"broken Unicode (ftfy) or decode HTML entities, {kept}.")
    if config.image_fit == "pad":
        notes.append("Images are fitted by resizing the long side and padding with the mean colour; "
                     f"{'open_clip pads with one grey level' if format_ == 'open_clip' else 'the processor crops'}"
                     ", so give it images fitted that way.")
    if format_ == "onnx":
        notes.append(f"Inputs: `pixels` float32 (batch, 3, {config.vision.image_size}, {config.vision.image_size}) "
                     "preprocessed as above; `token_ids` int64 (batch, context) padded; outputs are L2-normalised. "
                     f"`{ALIGNOPS_CONFIG}` holds the full preprocessing.")
    if config.reduced_decode:
        notes.append("alignops decodes large JPEGs at reduced scale (within two grey levels of a full decode).")
    return ["## Notes", "", *[f"- {n}" for n in notes], ""] if notes else []
