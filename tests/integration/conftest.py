import pytest

from registry.registry import Registry


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path):
    """The registry suite runs against both stores: a local directory and S3 (moto's server on 127.0.0.1)."""
    if request.param == "local":
        return Registry.local(tmp_path / "registry")
    return Registry.from_url(f"s3://{request.getfixturevalue('s3_bucket')}/team-a")


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
