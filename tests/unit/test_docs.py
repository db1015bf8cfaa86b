"""The documentation cannot rot: the site builds strictly, its CLI reference names every command and option of
the command line as it is, every `$ alignops …` example parses against that command line, and the demo's
transcript shows the stages the demo runs today."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli.reference import commands, root

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def example_commands() -> list[tuple[str, str]]:
    """Each `$ alignops …` line of the docs' console blocks, without its comment, `&` and `[optional]` parts."""
    found = []
    for page in sorted(DOCS.glob("**/*.md")):
        for line in page.read_text().splitlines():
            if line.startswith("$ alignops "):
                command = re.sub(r"\s*&\s*$", "", re.sub(r"\s+#.*$", "", line[2:]))
                found.append((f"{page.relative_to(DOCS)}: {line.strip()[:60]}", re.sub(r"\s\[[^\]]*\]", "", command)))
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
