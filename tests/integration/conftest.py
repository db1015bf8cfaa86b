import pytest

from registry.registry import Registry


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path):
    """The registry suite runs against both stores: a local directory and S3 (moto's server on 127.0.0.1)."""
    if request.param == "local":
        return Registry.local(tmp_path / "registry")
    return Registry.from_url(f"s3://{request.getfixturevalue('s3_bucket')}/team-a")


@pytest.fixture
def artifact(tmp_path):
    """A small artifact folder (weights, config, a tokenizer in a subfolder) for the registry suites."""
    folder = tmp_path / "artifact"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x00weights" * 100)
    (folder / "config.json").write_text('{"embed_dim": 8}')
    (folder / "tokenizer" / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def scans(monkeypatch) -> list:
    """The dataset directories `validate_data` scans, in order (its cached task skips the scan)."""
    from flows import validate_data as validate_module

    calls = []
    original = validate_module.validate_dataset

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(validate_module, "validate_dataset", counting)
    return calls
