"""Local paths and ``s3://`` URIs as one pyarrow filesystem.

Data readers and the local artifact store share these few operations: name a location,
list a folder, write a file that readers never see half-written. S3 credentials come from
the AWS standard chain (environment, shared config, instance role); the endpoint from the
argument, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` as boto3 reads them, so MinIO
or a local moto server need no code change.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from saviorrec.atomic_files import atomic_path
from saviorrec.storage.s3 import is_s3_uri, split_s3_uri


def s3_filesystem(endpoint_url: str | None = None, max_attempts: int = 5) -> pafs.S3FileSystem:
    """An S3 filesystem with the AWS SDK's standard retry mode (``max_attempts`` counts the first try)."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return _s3_filesystem(endpoint, max_attempts)


@functools.lru_cache(maxsize=8)
def _s3_filesystem(endpoint: str | None, max_attempts: int) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=endpoint,
                             retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=max_attempts))


def resolve(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or an ``s3://BUCKET/KEY`` URI."""
    if is_s3_uri(str(uri)):
        bucket, key = split_s3_uri(str(uri))
        return s3_filesystem(), f"{bucket}/{key}" if key else bucket
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def join(uri: str | Path, *parts: str) -> str:
    """``uri/part/...``: ``/``-joined for S3, the platform's separator for local paths."""
    return "/".join([str(uri).rstrip("/"), *parts]) if is_s3_uri(str(uri)) else str(Path(uri, *parts))


def list_names(uri: str | Path) -> list[str]:
    """Names of the immediate children (files and folders) of a folder, sorted; [] when it is absent."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in infos)


def is_file(uri: str | Path) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.File


@contextlib.contextmanager
def atomic_output(uri: str | Path) -> Iterator[pa.NativeFile]:
    """A stream whose content appears under ``uri`` only once the block ends without error.

    Locally it is a hidden temporary file beside the target, renamed into place; on S3 a
    buffer sent as one object (an object is stored whole or not at all).
    """
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        with atomic_path(path) as tmp, fs.open_output_stream(str(tmp), compression=None) as stream:
            yield stream
        return
    buffer = pa.BufferOutputStream()
    yield buffer
    with fs.open_output_stream(path, compression=None) as stream:
        stream.write(buffer.getvalue())
