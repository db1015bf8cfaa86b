import pytest

from registry.registry import Registry


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path):
    """The registry suite runs against both stores: a local directory and S3 (moto's server on 127.0.0.1)."""
    if request.param == "local":
        return Registry.local(tmp_path / "registry")
    return Registry.from_url(f"s3://{request.getfixturevalue('s3_bucket')}/team-a")
