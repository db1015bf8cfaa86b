"""The platform as a flow sees it: the state layout (`components.runtime.Settings`) with the services
built on it, the registry and the DVC workspace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.data.reference import DatasetRef
from components.runtime import Settings
from infra.workspace import dataset_reference, init_workspace
from registry.registry import Registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Platform(Settings):
    def open_workspace(self) -> Path:
        """The DVC workspace, initialised with the configured remote (S3 endpoint from boto's variable)."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") if self.dvc_remote_url.startswith("s3://") else None
        return init_workspace(self.workspace, self.dvc_remote_url, endpoint)

    def registry(self) -> Registry:
        return Registry.from_url(self.registry_url)

    def dataset_ref(self, directory: Path) -> DatasetRef:
        """A directory as a dataset reference: `path@rev` and its DVC hash when it is a tracked dataset of the
        workspace holding the committed bytes, else unversioned."""
        return dataset_reference(self.workspace, directory)


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
