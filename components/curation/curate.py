"""A curation run on a dataset directory: score every pair with a model, fingerprint every image, decide
what each rule drops, and write the kept rows as a new dataset directory."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.curation.decide import Decision, Fingerprints, Reference, decide, normalised
from components.curation.rules import RULES, CurationRules
from components.curation.works import ImageWork, TextWork
from components.data.location import ImageRoot
from components.data.manifest import manifest_rows, read_manifest, resolve_image, write_manifest
from components.models.directory import ModelDirectory
from components.partitions.plan import IN_PROCESS, Runner

GUARDED_SPLITS = ("val", "test")  # what evaluation measures: training must not overlap it


@dataclass
class CurationResult:
    rows: pd.DataFrame  # every manifest row, with `score` (NaN where quarantined), `rule` ("" where kept) and
    # `shared_caption` (its caption also describes an eval image: kept, unless the rules drop such rows)
    score_thresholds: dict[str, float]

    @property
    def kept(self) -> pd.DataFrame:
        return self.rows[self.rows["rule"] == ""].drop(columns=["score", "rule", "shared_caption"])

    @property
    def shared_captions_kept(self) -> int:
        return int((self.rows["shared_caption"] & (self.rows["rule"] == "")).sum())

    @property
    def dropped(self) -> pd.DataFrame:
        return self.rows.loc[self.rows["rule"] != "", ["sample_id", "image_id", "split", "caption", "score", "rule"]]

    @property
    def counts(self) -> dict[str, int]:
        """Rows dropped per rule, every rule named (0 where it dropped none)."""
        found = self.rows["rule"].value_counts()
        return {rule: int(found.get(rule, 0)) for rule in RULES}


def curate_dataset(dataset_dir: Path, model: ModelDirectory, rules: CurationRules, *,
                   quarantined: frozenset[str] = frozenset(), against: tuple[Path, ...] = (),
                   runner: Runner = IN_PROCESS) -> CurationResult:
    """Rules judge the train split; the dataset's own val/test rows and every `against` dataset's are the
    reference that train rows must not leak into. Images and captions are read and embedded by `runner`."""
    check_sizes((dataset_dir, *against), rules.max_rows)
    manifest = read_manifest(dataset_dir, strict=False, max_rows=rules.max_rows)  # every row annotated
    usable = manifest[~manifest["sample_id"].astype(str).isin(quarantined)]
    images, image_emb = _fingerprinted(dataset_dir, usable, model, runner, embed=True)
    position = {image_id: i for i, image_id in enumerate(images.image_ids)}
    text_emb = runner.map(TextWork(model=model), usable["caption"].astype(str).tolist())
    scores = np.einsum("nd,nd->n", image_emb[usable["image_id"].map(position).to_numpy()], text_emb)
    images.embeddings = image_emb if rules.embedding_cosine is not None else None
    reference = _reference(usable, images, against, model=model, runner=runner, rules=rules)
    decision = decide(usable, images, scores, rules, reference)
    return CurationResult(rows=_annotated(manifest, usable, scores, decision),
                          score_thresholds=decision.score_thresholds)


def check_sizes(dataset_dirs: tuple[Path, ...], max_rows: int) -> None:
    """Refuse a manifest over `max_rows` from its metadata alone, before any row or image is read."""
    for directory in dataset_dirs:
        rows = manifest_rows(Path(directory))
        if rows > max_rows:
            raise ValueError(f"{directory} has {rows:,} rows, over the curation limit of {max_rows:,}: curate it "
                             "in parts (by `source` or shard), or raise the limit (--max-rows)")


def write_curated(source_dir: Path, result: CurationResult, out_dir: Path) -> Path:
    """The kept rows and copies of their images in `out_dir`, which must not exist yet. Copies, not links:
    DVC makes the files it tracks read-only, which would reach through a hard link into the source."""
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists: name a new dataset (a curated version is never written "
                              "over another)")
    kept = result.kept
    for image in kept["image"].astype(str).unique():
        source, target = resolve_image(source_dir, image), resolve_image(out_dir, image)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return write_manifest(kept, out_dir)


def _fingerprinted(dataset_dir: Path, rows: pd.DataFrame, model: ModelDirectory, runner: Runner,
                   embed: bool) -> tuple[Fingerprints, np.ndarray | None]:
    """Each image of `rows` read once: its bytes hashed, its pixels decoded once for the pHash and, with
    `embed`, for the model."""
    images = rows.drop_duplicates("image_id")
    work = ImageWork(root=ImageRoot(root=str(dataset_dir)), model=model if embed else None)
    part = runner.map(work, images["image"].astype(str).tolist())
    return Fingerprints(images["image_id"].tolist(), part.sha256_hex, part.hashes), part.embeddings


def _reference(usable: pd.DataFrame, own: Fingerprints, against: tuple[Path, ...], *, model: ModelDirectory,
               runner: Runner, rules: CurationRules) -> Reference:
    """The guarded rows of this dataset (fingerprinted already, with the train rows) and of every eval set
    (image ids are prefixed per dataset: two datasets may use the same names for different pictures)."""
    guarded = usable[usable["split"].isin(GUARDED_SPLITS)]
    ids = set(guarded["image_id"])
    parts = [own.subset(np.array([i for i, image_id in enumerate(own.image_ids) if image_id in ids], dtype=int))]
    captions = described(guarded, "0")
    for directory in against:
        frame = read_manifest(directory, max_rows=rules.max_rows)
        guarded = frame[frame["split"].isin(GUARDED_SPLITS)]
        if guarded.empty:
            raise ValueError(f"{directory} has no val or test rows to guard against leakage: name an eval set")
        prints, embeddings = _fingerprinted(directory, guarded, model, runner,
                                            embed=rules.embedding_cosine is not None)
        prints.embeddings = embeddings
        parts.append(prints)
        for caption, images in described(guarded, str(len(parts) - 1)).items():
            captions[caption] = captions.get(caption, 0) + images
    return Reference(images=Fingerprints(
        image_ids=[f"{number}/{image_id}" for number, prints in enumerate(parts) for image_id in prints.image_ids],
        sha256=[sha for prints in parts for sha in prints.sha256],
        hashes=np.concatenate([prints.hashes for prints in parts]),
        embeddings=np.concatenate([prints.embeddings for prints in parts]) if rules.embedding_cosine is not None
        else None), captions=captions)


def described(rows: pd.DataFrame, dataset: str) -> dict[str, int]:
    """Normalised caption -> the distinct images of `rows` it describes (ids kept apart per dataset)."""
    counted = rows.assign(text=rows["caption"].map(normalised), key=dataset + "/" + rows["image_id"].astype(str))
    return counted.groupby("text")["key"].nunique().to_dict()


def _annotated(manifest: pd.DataFrame, usable: pd.DataFrame, scores: np.ndarray, decision: Decision) -> pd.DataFrame:
    rows = manifest.assign(score=np.nan, rule="quarantined", shared_caption=False)
    rows.loc[usable.index, "score"] = scores
    rows.loc[usable.index, "rule"] = decision.rule
    rows.loc[usable.index, "shared_caption"] = decision.shared_caption
    return rows
