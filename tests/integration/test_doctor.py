"""`alignops doctor` answers when something is wrong: a store or server that does not answer is one line with
what to do, and exit 1; `--version` and shell completion are there."""

from importlib import metadata

from cli_invoke import invoke

from registry.local_s3 import free_port


def findings(output: str) -> dict[str, tuple[str, str]]:
    """The table's rows, a folded cell's lines joined back."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        if line.startswith("│"):
            check, status, detail = (cell.strip() for cell in line.split("│")[1:-1])
            if check:
                found[check] = [status, detail]
            else:
                found[list(found)[-1]][1] += detail
    return {check: (status, detail) for check, (status, detail) in found.items()}


def test_a_healthy_local_setup_is_all_ok(monkeypatch):
    for name in ("ALIGNOPS_REGISTRY", "ALIGNOPS_DVC_REMOTE", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    done = invoke("doctor")
    found = findings(done.output)
    assert done.exit_code == 0, done.output
    assert {"python", "torch", "prefect", "state directory", "free disk", "registry", "dvc remote", "prefect api",
            "local stack"} <= set(found)
    assert found["torch"][1].startswith(metadata.version("torch"))
    assert found["signing"][0] == "ok" and found["signing"][1].startswith("signing as pytest; ")
    assert all(status != "fail" for status, _ in found.values())


def test_stores_and_servers_that_do_not_answer_are_named_with_what_to_do(monkeypatch, moto_s3):
    nobody = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ALIGNOPS_REGISTRY", "s3://no-such-bucket/models")
    monkeypatch.setenv("PREFECT_API_URL", f"{nobody}/api")
    done = invoke("doctor")
    found = findings(done.output)
    assert done.exit_code == 1
    assert found["registry"][0] == "fail" and "check AWS_ENDPOINT_URL_S3 and the credentials" in found["registry"][1]
    assert found["prefect api"][0] == "fail" and "does not answer" in found["prefect api"][1]
    assert "testing" not in done.output  # the credentials stay out of the report


def test_a_reachable_bucket_is_ok(monkeypatch, s3_bucket):
    monkeypatch.setenv("ALIGNOPS_REGISTRY", f"s3://{s3_bucket}/models")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert findings(invoke("doctor").output)["registry"] == ("ok", f"s3://{s3_bucket}/models answers")


def test_version_and_completion():
    shown = invoke("--version")
    assert shown.exit_code == 0 and shown.output.startswith(f"alignops {metadata.version('alignops')} (Python 3.")
    assert "--install-completion" in invoke("--help").output
