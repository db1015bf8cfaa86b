"""The registry's S3 store (boto3): conditional writes for atomic updates, multipart for large files.

Endpoint, region and credentials come from boto3's own chain (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`,
`AWS_PROFILE`, access keys in the environment or a profile); this module never reads or logs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from core.secrets import strip_userinfo
from registry.store import KeyNotFound, PreconditionFailed

MAX_ATTEMPTS = 6  # botocore's "standard" retries: exponential backoff with jitter, ~30 s in all
# Measured against moto (benchmarks/registry.py): uploads are fastest in many small parts, downloads in
# few large ranged GETs.
UPLOAD = TransferConfig(multipart_threshold=8 * 2**20, multipart_chunksize=8 * 2**20, max_concurrency=10)
DOWNLOAD = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20, max_concurrency=8)
_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict"}
_NETWORK = (ConnectionError, HTTPClientError)  # refused, reset or closed mid-request


class StoreUnavailable(RuntimeError):
    """The S3 endpoint did not answer even after retries with backoff."""


def attempts() -> int:
    """How many times a request is tried: AWS's own setting `AWS_MAX_ATTEMPTS` where it is set (a config
    object would otherwise override it), else `MAX_ATTEMPTS`; bounded so that a typo cannot retry for hours."""
    value = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if not value:
        return MAX_ATTEMPTS
    if not value.isdigit() or not 1 <= int(value) <= 20:
        raise ValueError(f"AWS_MAX_ATTEMPTS={value[:20]!r} is not a whole number from 1 to 20: set it so, or unset it")
    return int(value)


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", client=None):
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.attempts = attempts()
        retries = {"total_max_attempts": self.attempts, "mode": "standard"}  # a fresh dict: botocore rewrites it
        config = Config(retries=retries, signature_version="s3v4")
        self.client = client or boto3.session.Session().client("s3", config=config)

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """`s3://bucket/optional/prefix`."""
        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise ValueError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket, prefix)

    def __repr__(self) -> str:
        return f"S3Store({self.url})"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"key {key!r} leaves the store")
        return self.prefix + key

    def _call(self, operation: str, key: str, **kwargs):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=self._key(key), **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _CONDITION_FAILED:
                raise PreconditionFailed(f"{key}: {code}") from None
            if code in ("NoSuchKey", "404"):
                raise KeyNotFound(key) from None
            raise
        except _NETWORK as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        endpoint = strip_userinfo(self.client.meta.endpoint_url)
        return StoreUnavailable(f"S3 at {endpoint} did not answer after {self.attempts} attempts with "
                                f"backoff ({type(error).__name__}); nothing partial is visible, so the operation "
                                "can simply be retried once the endpoint is back")

    def put_bytes(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        conditions = {"IfNoneMatch": "*"} if if_none_match else {"IfMatch": if_match} if if_match else {}
        return self._call("put_object", key, Body=data, **conditions)["ETag"]

    def get_bytes(self, key: str) -> tuple[bytes, str]:
        response = self._call("get_object", key)
        return response["Body"].read(), response["ETag"]

    def put_file(self, key: str, source: Path) -> None:
        try:
            self.client.upload_file(str(source), self.bucket, self._key(key), Config=UPLOAD)
        except (BotoCoreError, S3UploadFailedError) as error:  # the transfer manager wraps connection errors
            raise self._unavailable(error) from error

    def get_file(self, key: str, target: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(target), Config=DOWNLOAD)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise KeyNotFound(key) from None
            raise
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def list_keys(self, prefix: str) -> list[str]:
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                               Prefix=self._key(prefix)):
                keys += [obj["Key"][len(self.prefix):] for obj in page.get("Contents", [])]
        except _NETWORK as error:
            raise self._unavailable(error) from error
        return sorted(keys)

    def caller_identity(self) -> str | None:
        """The ARN STS gives the credentials this store uses, or None where no STS answers (an S3-compatible
        service without one). STS is asked at `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` where set, else,
        beside a custom S3 endpoint, at that endpoint (a local S3 server serves both), else AWS's."""
        endpoint = None
        if not (os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or None
        config = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10)
        try:
            sts = boto3.session.Session().client("sts", endpoint_url=endpoint, config=config)
            return sts.get_caller_identity()["Arn"]
        except (BotoCoreError, ClientError, KeyError):
            return None

    def presign(self, key: str, expires_s: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                                                  ExpiresIn=expires_s)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", key)
            return True
        except KeyNotFound:
            return False
