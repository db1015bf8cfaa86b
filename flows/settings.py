"""Where the platform keeps its state, derived from `ALIGNOPS_HOME` (default `./.alignops`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pydantic import BaseModel

from components.runtime import alignops_home, configure_environment
from infra.workspace import init_workspace
from registry.registry import Registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POLICIES = PROJECT_ROOT / "components" / "evaluation" / "policies"


class Platform(BaseModel):
    home: Path

    @classmethod
    def from_env(cls) -> Platform:
        return cls(home=configure_environment(alignops_home()))

    @property
    def registry_url(self) -> str:
        """`ALIGNOPS_REGISTRY` (`s3://bucket/prefix` or a directory), else a directory in the state dir."""
        return os.environ.get("ALIGNOPS_REGISTRY") or str(self.home / "registry")

    @property
    def workspace(self) -> Path:
        """The git + DVC workspace holding versioned datasets."""
        return self.home / "workspace"

    @property
    def dvc_remote_url(self) -> str:
        """`ALIGNOPS_DVC_REMOTE` (a folder or s3://bucket/path), else a folder in the state directory."""
        return os.environ.get("ALIGNOPS_DVC_REMOTE") or str(self.home / "dvc-remote")

    def open_workspace(self) -> Path:
        """The DVC workspace, initialised with the configured remote (S3 endpoint from boto's variable)."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") if self.dvc_remote_url.startswith("s3://") else None
        return init_workspace(self.workspace, self.dvc_remote_url, endpoint)

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    def registry(self) -> Registry:
        return Registry.from_url(self.registry_url)


def code_revision() -> str:
    """The git revision of the alignops code, marked `-dirty` when it has uncommitted changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"alignops=={version('alignops')}"
