"""Fuzz a served bento through its own OpenAPI spec with schemathesis: every generated request, valid or
not, must get an answer that is not a 5xx, and the server must still be up at the end.
Bounded in examples per operation and in time; the server listens on 127.0.0.1 and is stopped by PID.
Usage: python -m benchmarks.serving_fuzz [--max-examples 100] [--max-time 240]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from benchmarks.common import gallery_dataset, untrained_artifact
from components.runtime import configure_environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--max-time", type=int, default=240)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure_environment(Path(tmp) / "home")
        from components.models.directory import ModelDirectory
        from serving.package import build_bento, build_gallery, import_model
        from serving.smoke import BentoServer
        from serving.standin import as_downloaded

        artifact = untrained_artifact(Path(tmp))
        gallery = build_gallery(ModelDirectory(path=str(artifact)), gallery_dataset(Path(tmp)), "test")
        downloaded, provenance, trusted = as_downloaded(artifact, Path(tmp) / "registry")
        bento = build_bento(import_model(downloaded, "alignops-fuzz", {}, provenance=provenance, trusted=trusted,
                                         gallery=gallery), {})
        with BentoServer(bento) as server:
            run = subprocess.run(
                [str(Path(sys.executable).with_name("st")), "run", f"{server.url}/docs.json",
                 "--checks", "not_a_server_error", "--max-examples", str(args.max_examples),
                 "--max-time", str(args.max_time), "--seed", "0", "--no-color"],
                capture_output=True, text=True)
            alive = httpx.post(f"{server.url}/encode_text", json={"texts": ["still here"]}, timeout=30)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    failures = [i for i, line in enumerate(lines) if line.lstrip().startswith(("_____", "1. ", "[500]", "curl "))]
    print("\n".join(lines[failures[0]:] if failures else lines[-25:]))
    print(f"schemathesis exit code {run.returncode} (0: no check failed); server alive after the run: "
          f"{alive.status_code == 200}")


if __name__ == "__main__":
    main()
