"""The curation rules a run applies, and the names under which dropped rows are counted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# In the order they are applied: a row is counted under the first rule that drops it. `shared_caption` drops
# only where asked (`drop_shared_captions`); otherwise its rows are kept and reported.
RULES = ("quarantined", "leakage", "shared_caption", "duplicate_image", "near_duplicate_image", "duplicate_caption",
         "low_score")


class CurationRules(BaseModel):
    """Rules judge the train split only: val and test rows are the yardstick, and stay as they are."""

    model_config = ConfigDict(extra="forbid")
    min_score: float | None = Field(None, ge=-1, le=1, description="drop train rows whose image-caption cosine "
                                                                   "is below this")
    keep_fraction: float | None = Field(None, gt=0, le=1, description="keep this share of train rows with the "
                                        "highest scores (per `source` where the column exists)")
    dedup: bool = Field(False, description="drop exact and near-duplicate images (one of each cluster is kept) "
                                           "and repeated captions of one image")
    hash_distance: int | None = Field(16, ge=0, le=64, description="perceptual hashes (256 bits) at most this "
                                      "many bits apart are near duplicates (copies measured: 6 or fewer; distinct "
                                      "photographs: 100 or more); none: not compared")
    embedding_cosine: float | None = Field(None, gt=0, le=1, description="also call images near duplicates "
                                           "when their embeddings' cosine is at least this (off by default: it "
                                           "trusts the scoring model)")
    specific_caption_words: int = Field(8, ge=1, description="a train caption that is also an eval caption is "
                                        "leakage when it is specific: this many words or more, on one eval image "
                                        "and one train image; a shorter or commoner one is a shared caption")
    drop_shared_captions: bool = Field(False, description="also drop train rows whose caption an eval image shares "
                                                          "(a generic caption on different pictures); default: "
                                                          "kept and reported")
    min_scorer_lift: float = Field(5.0, ge=1, description="refuse to filter by a model whose own R@1 on the "
                                   "dataset's held-out split is under this multiple of chance (its scores would "
                                   "drop pairs nearly at random), unless forced")
    max_rows: int = Field(2_000_000, ge=1, description="refuse a larger manifest (the dataset's or an eval set's) "
                                                        "before any image is read: every image is held as an "
                                                        "embedding and a fingerprint")

    @model_validator(mode="after")
    def one_score_rule(self) -> CurationRules:
        if self.min_score is not None and self.keep_fraction is not None:
            raise ValueError("give --min-score or --keep-fraction, not both")
        return self

    @property
    def scores_rows(self) -> bool:
        return self.min_score is not None or self.keep_fraction is not None
