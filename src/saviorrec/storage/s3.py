"""boto3 client construction and s3:// URI handling.

Credentials come only from boto3's standard chain (environment, shared config, instance
role). The endpoint comes from the argument, else ``AWS_ENDPOINT_URL`` (honoured by boto3
itself), so MinIO or a local moto server need no code change.
"""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config


def is_s3_uri(uri: str | object) -> bool:
    return isinstance(uri, str) and uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key.strip("/")


@functools.lru_cache(maxsize=8)
def s3_client(endpoint_url: str | None = None, max_attempts: int = 5):
    """A boto3 S3 client with botocore's standard retry mode (exponential backoff).

    ``max_attempts`` counts every try, the first included (botocore's ``total_max_attempts``).
    """
    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
