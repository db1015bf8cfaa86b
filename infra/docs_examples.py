"""Console examples for the documentation, written from real runs, so no page shows a recollection of one.

`python -m infra.docs_examples` (`make docs-examples`) runs, each in a fresh directory of its own:

- `alignops demo`, written to `docs/examples/demo.txt` headed by the date, the machine and its load;
- the walkthroughs of "Bring your own data" and "Start from a checkpoint" on `../shared/data/coco-mini`, as a
  new user types them, one file per console block (`docs/examples/walkthrough/NN.txt`), each command followed
  by what it printed and how long it took.

The pages include these files (`--8<--`); `tests/unit/test_docs.py` fails when a console block that shows
output is not one of them. `python -m infra.docs_examples walkthrough` records the walkthroughs alone.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
SHARED = ROOT.parent / "shared"
ALIGNOPS = Path(sys.executable).with_name("alignops")
PROGRESS = re.compile(r"^\[(train|finetune)\] step ")
BENTO = re.compile(r"alignops-embedding:[a-z0-9]+")


@dataclass(frozen=True)
class Block:
    """One console block of a page: the commands as the page shows them, run one after another."""

    page: str
    commands: tuple[str, ...]


WALKTHROUGH = (
    Block("bring-your-own-data", (
        "alignops keys create alice",
        "head -3 captions.csv",
        "alignops data import csv captions.csv coco --images ../shared/data/coco-mini/val2017")),
    Block("bring-your-own-data", ("alignops data validate coco", "alignops train coco --name coco-clip")),
    Block("bring-your-own-data", (
        "alignops evaluate coco-clip:1 coco --json eval.json",
        'alignops registry promote coco-clip 1 --reason "first model on our data"')),
    Block("bring-your-own-data", (
        "alignops data import csv captions.csv .alignops/workspace/coco --images ../shared/data/coco-mini/val2017",
        "alignops data add .alignops/workspace/coco")),
    Block("checkpoint", (
        "alignops registry import-hf clip clip-b32",
        "alignops evaluate clip-b32:1 coco --json zero-shot.json",
        "alignops finetune general coco --base clip-b32:1 --name coco-clip --max-minutes 2",
        'alignops registry promote coco-clip 2 --force "coco-mini: 9 test images cannot decide the gate"',
        "alignops package coco-clip@production --gallery coco",
        "alignops serve {bento} --port 3123 &",
        "curl -s -X POST localhost:3123/search -H 'content-type: application/json' "
        "-d '{\"texts\": [\"a plane on a lake\"], \"k\": 3}'",
        "kill %1")),
)


def record_demo(out: Path = EXAMPLES / "demo.txt") -> Path:
    with tempfile.TemporaryDirectory() as home:
        load, started = os.getloadavg()[0], time.monotonic()
        done = subprocess.run([str(ALIGNOPS), "demo"], env={**os.environ, "ALIGNOPS_HOME": home, "COLUMNS": "120"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True, cwd=home)
        wall = time.monotonic() - started
    out.write_text(f"$ alignops demo        # {machine(load)}, {wall / 60:.1f} min wall\n" + done.stdout)
    return out


def record_walkthrough(out: Path = EXAMPLES / "walkthrough") -> list[Path]:
    """Each block of `WALKTHROUGH` run in one fresh directory beside `shared/` (so `../shared/data` is the
    real data), with the default state directory `./.alignops`, as the pages tell a new user to."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "shared").symlink_to(SHARED)
        here = Path(scratch) / "work"
        here.mkdir()
        setup(here)
        session = Session(here)
        written, load, page = [], os.getloadavg()[0], None
        for number, block in enumerate(WALKTHROUGH, 1):
            header = f"# recorded {machine(load)}\n" if block.page != page else ""
            page = block.page
            text = header + "".join(session.run(command) for command in block.commands)
            path = out / f"{number:02d}.txt"
            path.write_text(text.replace(scratch, "/tmp/…"))
            written.append(path)
    return written


def setup(here: Path) -> None:
    """What a user has before the first command: coco-mini's captions as a Kaggle-style `image,caption` CSV,
    and a checkpoint directory `clip` (a small random CLIP stands in for a download)."""
    import pandas as pd

    from infra.standin import save_standin_checkpoint

    coco = SHARED / "data" / "coco-mini"
    data = json.loads((coco / "annotations" / "captions_val2017.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    pd.DataFrame([{"image": files[a["image_id"]], "caption": a["caption"].strip()} for a in data["annotations"]]
                 ).to_csv(here / "captions.csv", index=False)
    with tempfile.TemporaryDirectory() as imported:
        subprocess.run([str(ALIGNOPS), "data", "import", "csv", str(here / "captions.csv"), imported + "/coco",
                        "--images", str(coco / "val2017")], check=True, capture_output=True,
                       env={**os.environ, "ALIGNOPS_HOME": imported + "/home"})
        save_standin_checkpoint("clip", here / "clip", Path(imported) / "coco")


class Session:
    """A shell as the walkthrough's user has one: commands run in `here`, a trailing `&` starts a job that
    `kill %1` stops, and `{bento}` is the bento the last `package` built."""

    def __init__(self, here: Path):
        self.here, self.job, self.bento = here, None, ""
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("ALIGNOPS_")}
        self.env |= {"COLUMNS": "110", "PATH": f"{ALIGNOPS.parent}:{os.environ['PATH']}"}

    def run(self, command: str) -> str:
        command = command.replace("{bento}", self.bento)
        started = time.monotonic()
        if command.endswith(" &"):
            return self.start(command[:-2], started)
        if command == "kill %1":
            os.killpg(self.job.pid, signal.SIGTERM)
            self.job.wait(timeout=60)
            return f"$ {command}          # stops the server and its workers\n"
        done = subprocess.run(["bash", "-c", command], cwd=self.here, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # one stream, in the order a terminal shows
        self.bento = next(iter(BENTO.findall(done.stdout)), self.bento)
        took = time.monotonic() - started
        return f"$ {command}{comment(took, done.returncode)}\n{elided(done.stdout)}"

    def start(self, command: str, started: float) -> str:
        self.job = subprocess.Popen(shlex.split(command), cwd=self.here, env=self.env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while subprocess.run(["curl", "-sf", "localhost:3123/readyz"], capture_output=True).returncode:
            if time.monotonic() - started > 180:
                raise TimeoutError(f"{command!r}: not ready after 180 s")
            time.sleep(1)
        return f"$ {command} &{' ' * 10}# ready in {time.monotonic() - started:.0f} s\n"


def comment(seconds: float, returncode: int) -> str:
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"          # {took}" + (f", exit {returncode}" if returncode else "") if seconds >= 2 or returncode else ""


def elided(output: str) -> str:
    """Training's progress lines, one every 10 s, shortened to the first two and the last."""
    lines = output.splitlines()
    progress = [i for i, text in enumerate(lines) if PROGRESS.match(text)]
    if len(progress) > 4:
        lines[progress[2]:progress[-1]] = [f"… {progress[-1] - progress[2]} more progress lines …"]
    return "".join(f"{text}\n" for text in lines)


def machine(load: float) -> str:
    return f"{date.today()}, {os.cpu_count()} cores ({platform.machine()}), load {load:.2f} at the start"


if __name__ == "__main__":
    which = sys.argv[1:] or ["demo", "walkthrough"]
    if "walkthrough" in which:
        print(*record_walkthrough(), sep="\n")
    if "demo" in which:
        print(record_demo())
