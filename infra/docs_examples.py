"""Console examples for the documentation, written from real runs: `python -m infra.docs_examples` runs
`alignops demo` in a fresh state directory and writes what it printed to `docs/examples/demo.txt`, headed by
the date, the machine and its load, so the Get started page shows a run, not a recollection of one."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def record_demo(out: Path = EXAMPLES / "demo.txt") -> Path:
    alignops = Path(sys.executable).with_name("alignops")
    with tempfile.TemporaryDirectory() as home:
        load, started = os.getloadavg()[0], time.monotonic()
        done = subprocess.run([str(alignops), "demo"], env={**os.environ, "ALIGNOPS_HOME": home, "COLUMNS": "120"},
                              capture_output=True, text=True, check=True, cwd=home)
        wall = time.monotonic() - started
    header = (f"$ alignops demo        # {date.today()}, {os.cpu_count()} cores ({platform.machine()}), "
              f"load {load:.2f} at the start, {wall / 60:.1f} min wall\n")
    out.write_text(header + done.stdout)
    return out


if __name__ == "__main__":
    print(record_demo())
