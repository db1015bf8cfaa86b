"""Dataset versions with DVC: a git + DVC workspace, a remote, and the version of a tracked directory.

The version of a dataset is its DVC directory hash plus the git revision of the workspace commit that
records it, so `path@rev` names exact bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel

from components.data.reference import DatasetRef
from core.secrets import has_userinfo, redact, strip_userinfo

GIT_IDENTITY = ["-c", "user.name=alignops", "-c", "user.email=alignops@localhost"]


class DatasetVersion(BaseModel):
    path: str  # relative to the workspace
    dvc_md5: str
    git_rev: str
    files: int
    size: int

    @property
    def ref(self) -> str:
        return f"{self.path}@{self.git_rev[:12]}"


class VersioningError(RuntimeError):
    pass


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise VersioningError(redact(f"`{' '.join(args[-3:])}` failed in {cwd}:\n"
                                     f"{done.stderr.strip() or done.stdout.strip()}"))
    return done.stdout.strip()


def _dvc(args: list[str], cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _git(args: list[str], cwd: Path) -> str:
    return _run(["git", *GIT_IDENTITY, *args], cwd)


def init_workspace(workspace: Path, remote_url: str, endpoint_url: str | None = None) -> Path:
    """A git repository with DVC initialised and `remote_url` (a folder or s3://) as the default remote.

    Idempotent. An S3 endpoint (MinIO, a local S3 server) goes into `.dvc/config.local`, outside git,
    because it belongs to the machine, not to the dataset's history; credentials stay in the environment.
    A remote URL carrying credentials (`https://user:password@host/…`) is committed without them, and the
    full URL is kept in `.dvc/config.local` only.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    if not (workspace / ".git").exists():
        _git(["init", "-q", "-b", "main"], workspace)
    if not (workspace / ".dvc").exists():
        _dvc(["init", "-q"], workspace)
        _dvc(["config", "core.analytics", "false"], workspace)
    _dvc(["remote", "add", "-f", "-d", "storage", strip_userinfo(remote_url)], workspace)
    if has_userinfo(remote_url):
        _dvc(["remote", "add", "--local", "-f", "storage", remote_url], workspace)
    if endpoint_url:
        _dvc(["remote", "modify", "--local", "storage", "endpointurl", endpoint_url], workspace)
    commit_files(workspace, [".dvc", ".dvcignore"], "Initialise DVC workspace")
    return workspace


def track_dataset(workspace: Path, dataset_dir: Path, message: str = "") -> DatasetVersion:
    """`dvc add` + git commit + `dvc push` a dataset directory inside the workspace; return its version."""
    workspace, dataset_dir = Path(workspace).resolve(), Path(dataset_dir).resolve()
    if not dataset_dir.is_relative_to(workspace):
        raise VersioningError(f"{dataset_dir} must lie inside the workspace {workspace}: import or copy it there "
                              f"(`alignops data import FORMAT SRC {workspace}/{Path(dataset_dir).name}`), then "
                              "`alignops data add` that folder")
    relative = dataset_dir.relative_to(workspace).as_posix()
    _dvc(["add", "-q", relative], workspace)
    pointer = f"{relative}.dvc"
    gitignore = (Path(relative).parent / ".gitignore").as_posix()
    _git(["add", pointer, gitignore], workspace)
    if _git(["status", "--porcelain", "--", pointer], workspace):
        _git(["commit", "-q", "-m", message or f"Track dataset {relative}"], workspace)
    _dvc(["push", "-q", relative], workspace)
    return dataset_version(workspace, relative)


def commit_files(workspace: Path, files: list[str], message: str) -> None:
    """Commit workspace files (nothing happens when they are unchanged)."""
    _git(["add", *files], workspace)
    if _git(["diff", "--cached", "--name-only"], workspace):
        _git(["commit", "-q", "-m", message], workspace)


def dataset_version(workspace: Path, relative: str) -> DatasetVersion:
    """The newest committed version of a tracked dataset."""
    pointer = Path(workspace) / f"{relative}.dvc"
    if not pointer.is_file():
        raise VersioningError(f"no dataset {relative!r} is tracked in {workspace}: add it with `alignops data add`")
    out = yaml.safe_load(pointer.read_text())["outs"][0]
    rev = _git(["log", "-n", "1", "--format=%H", "--", f"{relative}.dvc"], workspace)
    return DatasetVersion(path=relative, dvc_md5=out["md5"], git_rev=rev, files=out.get("nfiles", 1),
                          size=out.get("size", 0))


def checkout_version(workspace: Path, ref: str, target: Path) -> Path:
    """The exact bytes of dataset `path@rev` in `target`, through the DVC API (from the cache, or pulled
    from the remote when the cache lacks them), checked against the hash recorded at that revision."""
    from dvc.api import DVCFileSystem

    path, _, rev = ref.partition("@")
    if not path or not rev:
        raise VersioningError(f"bad dataset reference {ref!r}: use PATH@REV (as `alignops data add` prints)")
    try:
        fs = DVCFileSystem(str(workspace), rev=rev)
        recorded = yaml.safe_load(fs.read_text(f"/{path}.dvc"))["outs"][0]["md5"]
        fs.get(f"/{path}", str(target), recursive=True)
    except FileNotFoundError as error:
        raise VersioningError(f"{ref}: no dataset {path!r} at revision {rev} in {workspace}") from error
    actual = directory_md5(target)
    if actual != recorded:
        raise VersioningError(f"{ref}: checked-out bytes hash to {actual}, not the recorded {recorded}")
    return target


def directory_md5(directory: Path) -> str:
    """DVC's hash of a directory: md5 of the JSON list of (md5, relpath) entries sorted by path, + `.dir`."""
    import hashlib
    import json

    entries = [{"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(directory).as_posix()}
               for p in Path(directory).rglob("*") if p.is_file()]
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def dataset_reference(workspace: Path, dataset_dir: Path) -> DatasetRef:
    """What a directory is, resolved once where a run starts: a tracked dataset inside the workspace whose
    bytes are the committed version is `path@rev` with its DVC hash; anything else is unversioned (its path,
    no hash), and nothing is cached on it."""
    workspace, dataset_dir = Path(workspace).resolve(), Path(dataset_dir).resolve()
    unversioned = DatasetRef(path=str(dataset_dir))
    if not dataset_dir.is_relative_to(workspace) or dataset_dir == workspace:
        return unversioned
    relative = dataset_dir.relative_to(workspace).as_posix()
    if not (workspace / f"{relative}.dvc").is_file():
        return unversioned
    version = dataset_version(workspace, relative)
    if directory_md5(dataset_dir) != version.dvc_md5:  # changed since it was committed: not that version
        return unversioned
    return DatasetRef(path=str(dataset_dir), ref=version.ref, hash=version.dvc_md5)
