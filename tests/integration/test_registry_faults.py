"""S3 goes away in the middle of an upload: retries with backoff, a clear error, nothing partial visible,
and a retry succeeds once it is back."""

import os

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from tcp_proxy import TcpProxy

from registry import s3 as s3_module
from registry.registry import Registry
from registry.s3 import StoreUnavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def big_artifact(tmp_path):
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(os.urandom(24 * 2**20))
    return folder


def test_outage_mid_upload_then_retry(moto_s3, s3_bucket, big_artifact, tmp_path, monkeypatch):
    # 5 MiB parts so the 24 MiB file goes up as a multipart upload; fewer retries keep the test short.
    monkeypatch.setattr(s3_module, "UPLOAD", TransferConfig(multipart_threshold=5 * 2**20,
                                                            multipart_chunksize=5 * 2**20, max_concurrency=2))
    monkeypatch.setattr(s3_module, "MAX_ATTEMPTS", 3)
    proxy = TcpProxy(moto_s3.port, cut_after_bytes=12 * 2**20)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    try:
        registry = Registry.from_url(f"s3://{s3_bucket}/r")
        with pytest.raises(StoreUnavailable, match=f"S3 at {proxy.url} did not answer after 3 attempts.*retried"):
            registry.register("big", big_artifact)
        assert proxy.forwarded >= 12 * 2**20  # it failed mid-upload, not before

        direct = boto3.client("s3", endpoint_url=moto_s3.url)  # look behind the proxy
        keys = [o["Key"] for o in direct.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
        assert "r/models/big/versions/1/claim.json" in keys
        assert not any(k.endswith("version.json") for k in keys)

        proxy.come_back()
        assert registry.list_versions("big") == []  # nothing partial is visible
        record = registry.register("big", big_artifact)
        assert record.version == 2
        out = registry.download("big", 2, tmp_path / "out")
        assert (out / "model.safetensors").read_bytes() == (big_artifact / "model.safetensors").read_bytes()
    finally:
        proxy.close()


def test_credentials_are_neither_logged_nor_stored(s3_bucket, big_artifact, caplog, capsys):
    registry = Registry.from_url(f"s3://{s3_bucket}/r")
    record = registry.register("creds", big_artifact, lineage={"datasets": {"train": "x@1"}})
    stored = b"".join(registry.store.get_bytes(k)[0] for k in registry.store.list_keys("models/creds/")
                      if k.endswith(".json"))
    secret = os.environ["AWS_SECRET_ACCESS_KEY"].encode()
    assert secret not in stored and secret.decode() not in caplog.text + "".join(capsys.readouterr())
    assert "AWS" not in record.model_dump_json()


def test_presigned_url_only_when_asked(s3_bucket, big_artifact, tmp_path):
    import httpx

    registry = Registry.from_url(f"s3://{s3_bucket}/r")
    registry.register("share", big_artifact)
    url = registry.presigned_url("share", 1, "config.json", expires_s=60)
    assert "X-Amz-Expires=60" in url and httpx.get(url).content == b"{}"
    with pytest.raises(Exception, match="presigned URLs need an S3 registry"):
        Registry.local(tmp_path / "local").presigned_url("x", 1, "config.json")
