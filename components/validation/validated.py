"""The validation report: one entry per check, the quarantine, and the counts that must add up."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from components.data.reference import DatasetRef


class CheckResult(BaseModel):
    name: str
    passed: bool
    critical: bool = False
    failures: int = 0
    examples: list[str] = Field(default_factory=list, description="a few offending values or sample ids")


class QuarantinedRow(BaseModel):
    sample_id: str
    reason: str


class ImageFacts(BaseModel):
    """What the scan saw across distinct images (conversions and rotations are applied, not rejected)."""

    images: int = 0
    modes: dict[str, int] = Field(default_factory=dict)
    exif_rotated: int = 0
    duplicate_images: int = 0


class ValidationReport(BaseModel):
    dataset: str
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    max_rejected_fraction: float
    checks: list[CheckResult]
    quarantine: list[QuarantinedRow]
    image_facts: ImageFacts = Field(default_factory=ImageFacts)
    data_docs: str | None = None

    @model_validator(mode="after")
    def _counts_add_up(self) -> ValidationReport:
        if self.rows_in != self.rows_kept + self.rows_quarantined or self.rows_quarantined != len(self.quarantine):
            raise ValueError("rows in must equal rows kept + rows quarantined")
        return self

    @property
    def rejected_fraction(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    @property
    def passed(self) -> bool:
        critical_ok = all(c.passed for c in self.checks if c.critical)
        return critical_ok and self.rows_kept > 0 and self.rejected_fraction <= self.max_rejected_fraction

    @property
    def quarantined_ids(self) -> frozenset[str]:
        return frozenset(q.sample_id for q in self.quarantine)


class ValidatedDataset(BaseModel):
    """A dataset that passed validation and the rows it quarantined: what training and evaluation take.
    A job written by hand (SLURM, a PyTorchJob) may name a dataset with no report and nothing quarantined."""

    dataset: DatasetRef
    quarantined: frozenset[str] = frozenset()
    report: ValidationReport | None = None

    @classmethod
    def from_report(cls, dataset: DatasetRef, report: ValidationReport) -> ValidatedDataset:
        return cls(dataset=dataset, quarantined=report.quarantined_ids, report=report)
