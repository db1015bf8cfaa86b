"""The eval-set catalog: which tracked datasets a model is re-measured on, kept as `eval_sets.yaml` in the
DVC workspace so that its history is versioned with the datasets it names."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator

from components.domains import domain as domain_preset
from components.evaluation.suites import EvalTarget
from infra.workspace import commit_files

CATALOG_FILE = "eval_sets.yaml"


class EvalSet(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$", description="prefix of its metrics, e.g. `synthetic_test`")
    dataset: str = Field(description="workspace path of a DVC-tracked dataset; its newest revision is measured")
    split: str = "test"
    domain: str | None = Field(None, description="a domain preset's metric suite and prompts; none: retrieval")

    @field_validator("domain")
    @classmethod
    def known_domain(cls, value: str | None) -> str | None:
        if value is not None:
            domain_preset(value)
        return value

    def target(self, dataset_dir: str) -> EvalTarget:
        """This eval set measured on a local copy of its dataset, with its preset's suite and prompts."""
        preset = domain_preset(self.domain or "general")
        return EvalTarget(name=self.name, dataset_dir=dataset_dir, split=self.split, suite=preset.suite,
                          prompt_domain=preset.prompt_domain)


def read_catalog(workspace: Path) -> list[EvalSet]:
    path = Path(workspace) / CATALOG_FILE
    if not path.is_file():
        return []
    return [EvalSet.model_validate(entry) for entry in yaml.safe_load(path.read_text()) or []]


def add_eval_set(workspace: Path, entry: EvalSet) -> Path:
    """Add `entry` (replacing the one of the same name) and commit the catalog in the workspace."""
    entries = {e.name: e for e in read_catalog(workspace)} | {entry.name: entry}
    path = Path(workspace) / CATALOG_FILE
    path.write_text(yaml.safe_dump([e.model_dump(exclude_none=True) for e in sorted(entries.values(),
                                                                                     key=lambda e: e.name)],
                                   sort_keys=False))
    commit_files(workspace, [CATALOG_FILE], f"Eval set {entry.name}: {entry.dataset} ({entry.split})")
    return path
