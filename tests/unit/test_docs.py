"""The documentation cannot rot: the site builds strictly, its CLI reference names every command and option of
the command line as it is, every `$ alignops …` example parses against that command line, every console block
that shows what a command printed is a transcript `infra/docs_examples.py` recorded, and the demo's
transcript shows the stages the demo runs today."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli.reference import commands, root

ROOT = Path(__file__).resolve().parents[2]
BENTO_TAG = r"alignops-embedding:[a-z0-9]+"
DOCS = ROOT / "docs"


def example_commands() -> list[tuple[str, str]]:
    """Each `$ alignops …` line of the docs' console blocks and recorded transcripts, without its comment, `&`
    and `[optional]` parts."""
    found = []
    for page in sorted([*DOCS.glob("**/*.md"), *DOCS.glob("examples/**/*.txt")]):
        for line in page.read_text().splitlines():
            if line.startswith("$ alignops "):
                command = re.sub(r"\s*&\s*$", "", re.sub(r"\s+#.*$", "", line[2:]))
                found.append((f"{page.relative_to(DOCS)}: {line.strip()[:60]}", re.sub(r"\s\[[^\]]*\]", "", command)))
    return found


def console_blocks() -> list[tuple[str, list[str]]]:
    found = []
    for page in sorted(DOCS.glob("**/*.md")):
        for number, block in enumerate(re.findall(r"^```console\n(.*?)^```", page.read_text(), re.M | re.S), 1):
            found.append((f"{page.relative_to(DOCS)} block {number}", block.splitlines()))
    return found


def parsed(args: list[str]) -> str:
    """The command `args` name, parsed as the CLI would: unknown options, missing arguments and values of the
    wrong type raise. Returns the command's path."""
    command, context, path = root(), None, ["alignops"]
    while True:
        context = command.make_context(path[-1], list(args), parent=context)
        if not hasattr(command, "list_commands"):
            return " ".join(path)
        name, command, args = command.resolve_command(context, [*context._protected_args, *context.args])
        path.append(name)


def test_the_site_builds_strictly_and_its_cli_reference_names_every_command_and_option(tmp_path):
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path)],
                   cwd=ROOT, check=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    page = (tmp_path / "reference" / "cli" / "index.html").read_text()
    listed = list(commands(root()))
    assert len(listed) > 30
    for path, command in listed:
        assert f"alignops {' '.join(path)}</code>" in page, f"no section for alignops {' '.join(path)}"
        for param in command.params:
            for option in getattr(param, "opts", []) if param.param_type_name == "option" else []:
                assert f"<code>{option}</code>" in page, f"alignops {' '.join(path)}: {option} is not listed"


@pytest.mark.parametrize(("where", "command"), example_commands(), ids=[w for w, _ in example_commands()])
def test_every_console_example_parses_against_the_command_line(where, command):
    args = shlex.split(command)[1:]
    assert parsed(args).startswith("alignops " + args[0])


def test_the_demo_transcript_shows_the_stages_the_demo_runs():
    from flows.demo import DemoConfig, planned_stages

    transcript = (DOCS / "examples" / "demo.txt").read_text()
    table = transcript[transcript.index("Where the time went"):]
    table = table[:table.index("└")]
    shown = re.findall(r"^│ (\S.*?)\s+│", table, re.M)
    assert shown == list(planned_stages(DemoConfig())), "re-run `make docs-examples`"


@pytest.mark.parametrize(("where", "lines"), console_blocks(), ids=[w for w, _ in console_blocks()])
def test_a_console_block_shows_output_only_from_a_recorded_transcript(where, lines):
    """Commands alone (with `\\` continuations and comments) may be written by hand, since the test above
    parses them; what a command printed comes from `infra/docs_examples.py`, included whole."""
    if lines and lines[0].startswith("--8<-- "):
        (included,) = re.findall(r'"([^"]+)"', lines[0])
        recorded = {str(path.relative_to(DOCS / "examples")) for path in recorded_transcripts()}
        assert len(lines) == 1 and included in recorded, f"{where}: {included} is not one the recorder writes"
        return
    continued = False
    for line in lines:
        assert continued or line.startswith(("$ ", "# ")) or not line.strip(), \
            f"{where}: {line!r} is output written by hand; record it (infra/docs_examples.py) and include it"
        continued = line.endswith("\\")


def recorded_transcripts() -> list[Path]:
    from infra.docs_examples import EXAMPLES, WALKTHROUGH

    return [EXAMPLES / "demo.txt", *(EXAMPLES / "walkthrough" / f"{n:02d}.txt" for n in range(1, len(WALKTHROUGH) + 1))]


def test_every_recorded_transcript_is_in_the_repository_and_runs_the_commands_the_recorder_runs():
    from infra.docs_examples import WALKTHROUGH

    for path in recorded_transcripts():
        assert path.is_file(), f"{path} is missing: run `make docs-examples`"
    for number, block in enumerate(WALKTHROUGH, 1):
        said = (DOCS / "examples" / "walkthrough" / f"{number:02d}.txt").read_text()
        ran = [re.sub(r"\s+#.*$", "", line[2:]).rstrip(" &") for line in said.splitlines() if line.startswith("$ ")]
        expected = [command.replace("{bento}", "").rstrip(" &") for command in block.commands]
        assert expected == [re.sub(BENTO_TAG, "", command) for command in ran], f"walkthrough/{number:02d}.txt"
