"""Process-wide settings: where state lives, and telemetry switched off before any tool starts."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

ENV_DEFAULTS = {
    # telemetry off, W&B offline unless the user asks for online
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "BENTOML_DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "WANDB_MODE": "offline",
    # nothing loads from a hub at run time; tokenizers' threads would fight the data loader's
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Prefect's temporary API server gets 20 s to start by default, which a busy 2-core machine can miss
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def alignops_home() -> Path:
    """The state directory (`ALIGNOPS_HOME`, default `./.alignops`)."""
    return Path(os.environ.get("ALIGNOPS_HOME") or ".alignops").resolve()  # set but empty: the default, not here


def private_by_default() -> None:
    """Files and folders this process creates are its user's alone (0600 / 0700): the state directory holds
    models, datasets, logs and server state. `ALIGNOPS_UMASK` (octal, e.g. `022`) configures otherwise."""
    os.umask(int(os.environ.get("ALIGNOPS_UMASK", "077"), 8))


def configure_environment(home: Path | None = None) -> Path:
    """Point every tool's state into the state directory, private to its user, and switch telemetry off.

    Values the user already set win (e.g. `WANDB_MODE=online`), so this only fills gaps.
    """
    private_by_default()
    home = (home or alignops_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ALIGNOPS_HOME"] = str(home)
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    state_dirs = {
        "PREFECT_HOME": home / "prefect",
        "BENTOML_HOME": home / "bentoml",
        "WANDB_DIR": home / "wandb",
        "WANDB_CACHE_DIR": home / "wandb" / "cache",
        "WANDB_DATA_DIR": home / "wandb" / "data",
        "WANDB_CONFIG_DIR": home / "wandb" / "config",
    }
    for key, path in state_dirs.items():
        os.environ.setdefault(key, str(path))
        Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
    return home


class Settings(BaseModel):
    """The state directory's layout and the `ALIGNOPS_*` variables that move parts of it elsewhere: the one
    place either is written down."""

    home: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(home=configure_environment(alignops_home()))

    @property
    def registry_url(self) -> str:
        """`ALIGNOPS_REGISTRY` (`s3://bucket/prefix` or a directory), else a directory in the state dir."""
        return self.remote_registry or str(self.local_registry)

    @property
    def remote_registry(self) -> str | None:
        """The registry the environment names (`ALIGNOPS_REGISTRY`), if it names one."""
        return os.environ.get("ALIGNOPS_REGISTRY") or None

    @property
    def dvc_remote_url(self) -> str:
        """`ALIGNOPS_DVC_REMOTE` (a folder or s3://bucket/path), else a folder in the state directory."""
        return os.environ.get("ALIGNOPS_DVC_REMOTE") or str(self.local_dvc_remote)

    @property
    def signing_key(self) -> Path:
        """The private key this user signs versions and approvals with (`ALIGNOPS_SIGNING_KEY`, else the one
        `alignops keys create` made in the state directory); used where the file exists."""
        return Path(os.environ.get("ALIGNOPS_SIGNING_KEY") or self.home / "keys" / "signing.pem")

    @property
    def trusted_keys(self) -> Path:
        """The folder of public keys this platform trusts, `<identity>.pub` (`ALIGNOPS_TRUSTED_KEYS`)."""
        return Path(os.environ.get("ALIGNOPS_TRUSTED_KEYS") or self.home / "trusted-keys")

    @property
    def access_policy(self) -> Path | None:
        """The access policy's YAML (`ALIGNOPS_ACCESS_POLICY`); unset: the platform default (production holds
        only signed versions)."""
        return Path(os.environ["ALIGNOPS_ACCESS_POLICY"]) if os.environ.get("ALIGNOPS_ACCESS_POLICY") else None

    @property
    def api_keys(self) -> Path:
        """The served bentos' API keys, as sha256 digests (`ALIGNOPS_API_KEYS_FILE`)."""
        return Path(os.environ.get("ALIGNOPS_API_KEYS_FILE") or self.home / "api-keys")

    # Where each part lives under the state directory.
    local_registry = property(lambda self: self.home / "registry", doc="the registry when none is configured")
    local_dvc_remote = property(lambda self: self.home / "dvc-remote", doc="the DVC remote when none is configured")
    workspace = property(lambda self: self.home / "workspace", doc="the git + DVC workspace of versioned datasets")
    runs = property(lambda self: self.home / "runs", doc="training runs, one folder each")
    evaluations = property(lambda self: self.home / "evaluations", doc="`alignops evaluate` pictures, per model")
    reports = property(lambda self: self.home / "reports", doc="validation reports, one folder per dataset version")
    old_models = property(lambda self: self.home / "old-models", doc="registry versions new models are trained "
                                                                      "to stay compatible with, by name and version")
    dataset_cache = property(lambda self: self.home / "datasets", doc="checked-out dataset versions, by DVC hash")
    cli_log = property(lambda self: self.home / "logs" / "cli.log", doc="tracebacks the CLI kept off the terminal")
    stack = property(lambda self: self.home / "stack", doc="the local stack's PID files, logs and S3 snapshot")
    demo_summary = property(lambda self: self.home / "demo-summary.json", doc="the last demo's results")
