"""The platform as a flow sees it: the state layout (`components.runtime.Settings`) with the services
built on it, the registry and the DVC workspace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.data.reference import DatasetRef
from components.runtime import Settings
from infra.workspace import dataset_reference, init_workspace
from registry.access import PLATFORM_POLICY, AccessPolicy, Trust
from registry.registry import Registry
from registry.signing import SigningKey, TrustedKeys, create_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Platform(Settings):
    def open_workspace(self) -> Path:
        """The DVC workspace, initialised with the configured remote (S3 endpoint from boto's variable)."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") if self.dvc_remote_url.startswith("s3://") else None
        return init_workspace(self.workspace, self.dvc_remote_url, endpoint)

    def registry(self) -> Registry:
        return Registry.from_url(self.registry_url, self.trust())

    def trust(self) -> Trust:
        """The keys and access policy the settings name, loaded once per registry opened."""
        key = self.signing_key
        return Trust(
            trusted=TrustedKeys.from_folder(self.trusted_keys),
            signing_key=SigningKey.load(key, os.environ.get("ALIGNOPS_SIGNING_KEY_PASSWORD")) if key.exists() else None,
            policy=AccessPolicy.load(self.access_policy) if self.access_policy else PLATFORM_POLICY)

    def create_signing_key(self, identity: str, trust: bool = True) -> Path:
        """A new signing key at the settings' path, its public key beside it as `<identity>.pub` and, with
        `trust`, in the trusted keys too; refused where a key exists (a key is never overwritten)."""
        if self.signing_key.exists():
            raise FileExistsError(f"a signing key exists at {self.signing_key}: keep it, or move it away first")
        public = self.signing_key.with_name(f"{identity}.pub")
        key = create_key(self.signing_key, public)
        if trust:
            self.trusted_keys.mkdir(parents=True, exist_ok=True)
            (self.trusted_keys / public.name).write_bytes(key.public_pem())
        return public

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
