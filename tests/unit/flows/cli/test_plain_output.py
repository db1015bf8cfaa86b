"""What the command line prints of data, records and users is text: markup in a path or a reason is shown as
written, and control bytes (escape sequences that clear a screen or retitle a window) reach the terminal
escaped."""

import json

import pytest
from cli_invoke import invoke

from flows.steps.output import line, printable, rich_table
from registry.registry import Registry

HOSTILE = "[/bold]x[link=https://evil.example]click[/link]\x1b[2J\x1b]0;owned\x07"
SHOWN = "[/bold]x[link=https://evil.example]click[/link]\\x1b[2J\\x1b]0;owned\\x07"


def test_printable_escapes_every_control_character_but_tab_and_newline():
    assert printable(HOSTILE) == SHOWN
    assert printable("a\tb\nc\x00d\x7fe\x9bf") == "a\tb\nc\\x00d\\x7fe\\x9bf"
    assert line("plain ", HOSTILE).plain == "plain " + SHOWN


def test_an_error_naming_a_hostile_path_is_one_line_of_text(tmp_path):
    result = invoke("data", "validate", f"{tmp_path}/{HOSTILE}")
    assert result.exit_code == 1
    (shown,) = result.output.strip().splitlines()  # one line, not a markup traceback
    assert shown.startswith("error: ") and SHOWN in shown and "\x1b" not in result.output


def test_a_recorded_reason_is_printed_as_text_in_history_and_tables(tmp_path, monkeypatch, capsys):
    registry = Registry.local(tmp_path / "registry")
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "config.json").write_text("{}")
    registry.register("plain", tmp_path / "artifact", reason=HOSTILE)
    monkeypatch.setenv("ALIGNOPS_REGISTRY", str(tmp_path / "registry"))
    table = invoke("registry", "history", "plain")
    assert table.exit_code == 0 and "\x1b" not in table.output and "\\x1b]0;owned\\x07" in table.output
    assert "[/bold]x[link=https://evil.example]click" in " ".join(table.output.split())  # its markup as written
    listed = json.loads(invoke("registry", "history", "plain", "--json").output)
    assert listed[0]["reason"] == HOSTILE  # JSON carries the record as it is, escaped by JSON itself


@pytest.mark.parametrize("cell", [HOSTILE, 3, None])
def test_table_cells_are_text(cell):
    from rich.console import Console

    console = Console(record=True, width=400, force_terminal=True, markup=False)
    console.print(rich_table(f"title {HOSTILE}", ["c"], [[cell]]))
    shown = console.export_text()
    assert "\x1b" not in shown and (SHOWN in shown if cell == HOSTILE else str(cell) in shown)


def test_credentials_are_masked_wherever_a_line_is_printed(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret")
    shown = printable("pushed to s3://AKIA:wJalrXUtnFEMI-secret@bucket/dvc and https://user:pw@host/x")
    assert shown == "pushed to s3://***@bucket/dvc and https://***@host/x"


def test_a_listing_shows_the_readable_versions_and_names_the_tampered_one(tmp_path, monkeypatch):
    registry = Registry.local(tmp_path / "registry")
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "config.json").write_text("{}")
    for name in ("kept", "tampered"):
        registry.register(name, tmp_path / "artifact")
    record = tmp_path / "registry" / "models" / "tampered" / "versions" / "1" / "version.json"
    tampered = json.loads(record.read_text())
    tampered["files"]["../escaped.json"] = tampered["files"]["config.json"]
    record.write_text(json.dumps(tampered))
    monkeypatch.setenv("ALIGNOPS_REGISTRY", str(tmp_path / "registry"))
    listed = invoke("registry", "list")
    assert listed.exit_code == 1
    assert "kept" in listed.output and "tampered:1 has an invalid version.json" in listed.output
    assert "1 record(s) refused, listed above; the rest are shown" in " ".join(listed.output.split())


def test_an_unknown_model_version_or_alias_names_what_there_is(tmp_path, monkeypatch):
    registry = Registry.local(tmp_path / "registry")
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "config.json").write_text("{}")
    registry.register("flickr-clip", tmp_path / "artifact")
    monkeypatch.setenv("ALIGNOPS_REGISTRY", str(tmp_path / "registry"))
    misspelt = invoke("registry", "promote", "flikr-clip", "1")
    assert misspelt.exit_code == 1 and "no model named 'flikr-clip'" in misspelt.output
    assert "did you mean 'flickr-clip'?" in " ".join(misspelt.output.split())
    assert "flow run" not in misspelt.output.lower()  # answered before any flow started
    missing = invoke("registry", "promote", "flickr-clip", "7")
    assert "flickr-clip has no version 7; it has versions 1" in " ".join(missing.output.split())
    unaliased = invoke("registry", "rollback", "flickr-clip", "--alias", "staging")
    assert "flickr-clip has no alias 'staging'; it has versions 1" in " ".join(unaliased.output.split())


def test_the_retention_matrix_prints_every_phase_column_and_the_figures(capsys):
    from components.evaluation.retention import Retention
    from flows.cli.streams import print_retention

    print_retention(Retention(phases=["data/a@1", "data/b@2", "data/c@3"], methods=["modx"] * 3,
                              matrix=[[0.5], [0.4, 0.6], [0.45, 0.5, 0.7]]))
    shown = capsys.readouterr().out
    assert all(cell in shown for cell in ("on 1", "on 2", "on 3", "3: c@3", "0.450", "0.700"))
    assert "average forgetting 0.075" in shown and "backward transfer -0.075" in shown
