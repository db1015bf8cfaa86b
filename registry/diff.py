"""Two versions side by side: metrics with deltas, the lineage that differs, the files that changed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from registry.records import VersionRecord


class MetricChange(BaseModel):
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


class LineageChange(BaseModel):
    field: str
    a: Any
    b: Any


class FileChange(BaseModel):
    file: str
    change: Literal["added", "removed", "changed", "same"]


class VersionDiff(BaseModel):
    a: str
    b: str
    metrics: list[MetricChange]
    lineage: list[LineageChange]
    files: list[FileChange]


def diff_versions(left: VersionRecord, right: VersionRecord) -> VersionDiff:
    metrics = [MetricChange(metric=m, a=left.metrics.get(m), b=right.metrics.get(m))
               for m in sorted(set(left.metrics) | set(right.metrics))]
    a, b = left.lineage.model_dump(), right.lineage.model_dump()
    lineage = [LineageChange(field=k, a=a.get(k), b=b.get(k)) for k in sorted((set(a) | set(b)) - {"metrics"})
               if a.get(k) != b.get(k)]
    files = [FileChange(file=f, change="added" if f not in left.files else "removed" if f not in right.files else
                        "changed" if left.files[f].sha256 != right.files[f].sha256 else "same")
             for f in sorted(set(left.files) | set(right.files))]
    return VersionDiff(a=left.ref, b=right.ref, metrics=metrics, lineage=lineage, files=files)
