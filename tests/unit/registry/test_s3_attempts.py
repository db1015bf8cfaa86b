"""How often the S3 store tries a request: AWS's own `AWS_MAX_ATTEMPTS` is honoured (boto3 lets a client's
config override it, so the store reads it), bounded, and the unavailable error says how many it made."""

import pytest

from registry import s3


def test_aws_max_attempts_is_honoured_and_bounded(monkeypatch):
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert s3.attempts() == s3.MAX_ATTEMPTS == 6
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert s3.attempts() == 2
    store = s3.S3Store("bucket", client=None)
    assert store.client.meta.config.retries["total_max_attempts"] == 2
    assert "after 2 attempts" in str(store._unavailable(ConnectionError("refused")))
    for wrong in ("0", "21", "three", "-1"):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", wrong)
        with pytest.raises(ValueError, match="AWS_MAX_ATTEMPTS=.*from 1 to 20"):
            s3.attempts()
