"""One interface for artifact files on a local directory or an S3 prefix.

The registry is written once against ``ArtifactStore``; ``open_store`` picks the backend
from the URI (``s3://BUCKET/PREFIX`` or a local path). Both backends give the same
guarantees the registry relies on:

- ``put_file`` never leaves a partly written object visible under its key;
- ``checksum`` re-reads what the store holds (sha256), so an upload can be verified;
- ``read_versioned`` / ``put_if`` are a compare-and-swap on one small object
  (S3 conditional writes ``If-None-Match: *`` / ``If-Match: ETag``; locally a file lock
  + ``os.replace``), so two writers racing on a pointer cannot both win.

S3 goes through boto3 (conditional writes, server-side checksums, one retry policy); local
files through ``saviorrec.storage.filesystem``, the layer data readers use too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from filelock import FileLock, Timeout

from saviorrec.atomic_files import atomic_path
from saviorrec.storage.filesystem import atomic_output, list_names
from saviorrec.storage.s3 import is_s3_uri, s3_client, split_s3_uri

_CHUNK = 1 << 20


class StorageError(RuntimeError):
    """The store cannot be reached or refused an operation; the message says which and where."""


class ArtifactNotFound(StorageError, FileNotFoundError):
    """No object under that key."""


class ConflictError(StorageError):
    """A conditional write lost: someone else changed the object first."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore(ABC):
    """Keys are ``/``-separated paths relative to the store's root."""

    uri: str

    @abstractmethod
    def put_file(self, local: Path, key: str) -> None: ...

    @abstractmethod
    def get_file(self, key: str, local: Path) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix/`` (recursive), relative to the store root."""

    @abstractmethod
    def list_children(self, prefix: str) -> list[str]:
        """Names of the immediate children (files and folders) of ``prefix/``."""

    @abstractmethod
    def checksum(self, key: str) -> tuple[str, int]:
        """(sha256 hex, size in bytes) of what the store holds under ``key``."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        """(content, token) or (None, None) when absent; the token feeds ``put_if``."""

    @abstractmethod
    def put_if(self, key: str, data: bytes, token: str | None) -> None:
        """Write only if the object is unchanged since ``token`` was read (``None``: absent)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abstractmethod
    def last_modified(self, prefix: str) -> dt.datetime | None:
        """When anything under ``prefix/`` was last written (UTC), None when nothing is there.

        Counts unfinished local writes (``.tmp``/``.lock`` files) too: they are activity.
        """

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when the store is a local directory, else None."""
        return None

    def describe(self, key: str = "") -> str:
        return f"{self.uri.rstrip('/')}/{key}" if key else self.uri


# ---- local directory ----------------------------------------------------------------------

class LocalStore(ArtifactStore):
    """A directory; writes go to a temporary file first and are renamed into place."""

    LOCK_TIMEOUT_S = 10.0  # an OS file lock: a crashed writer's lock is released with its process

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root != path and self.root not in path.parents:
            raise StorageError(f"key escapes the store root: {key!r}")
        return path

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def put_file(self, local: Path, key: str) -> None:
        with open(local, "rb") as source, atomic_output(self._path(key)) as out:
            shutil.copyfileobj(source, out, _CHUNK)

    def get_file(self, key: str, local: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ArtifactNotFound(f"not found: {self.describe(key)}")
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, local)

    def put_bytes(self, key: str, data: bytes) -> None:
        with atomic_output(self._path(key)) as out:
            out.write(data)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"not found: {self.describe(key)}")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith((".tmp", ".lock"))
        )

    def list_children(self, prefix: str) -> list[str]:
        return [name for name in list_names(self._path(prefix)) if not name.endswith((".tmp", ".lock"))]

    def checksum(self, key: str) -> tuple[str, int]:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"not found: {self.describe(key)}")
        return sha256_file(path), path.stat().st_size

    def read_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        path = self._path(key)
        if not path.is_file():
            return None, None
        data = path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()

    def put_if(self, key: str, data: bytes, token: str | None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        try:
            with FileLock(lock, timeout=self.LOCK_TIMEOUT_S):
                _, current = self.read_versioned(key)
                if current != token:
                    raise ConflictError(f"{self.describe(key)} changed since it was read (concurrent writer)")
                self.put_bytes(key, data)
        except Timeout:
            raise ConflictError(f"{lock} is held by another writer") from None

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def last_modified(self, prefix: str) -> dt.datetime | None:
        base = self._path(prefix)
        if not base.exists():
            return None
        mtimes = [base.stat().st_mtime]  # an empty folder still tells when it was made
        for path in base.rglob("*"):
            try:
                mtimes.append(path.stat().st_mtime)
            except FileNotFoundError:  # renamed or removed while we looked
                continue
        return dt.datetime.fromtimestamp(max(mtimes), dt.UTC)


# ---- S3 -----------------------------------------------------------------------------------

class S3Store(ArtifactStore):
    """``s3://BUCKET/PREFIX`` through boto3 (standard credential chain, botocore retries).

    Objects are written with an S3-verified SHA-256 checksum; ``checksum`` reads it back
    with HEAD (falls back to downloading and hashing when the server keeps none).
    """

    def __init__(self, uri: str, endpoint_url: str | None = None, max_attempts: int = 5):
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = split_s3_uri(uri)
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.client = s3_client(endpoint_url, max_attempts)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
        return f"{self.uri} (endpoint {endpoint})"

    def _call(self, what: str, key: str, fn, *args, **kwargs):
        """Run one boto3 call; turn botocore's errors into StorageError naming key and endpoint."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise ConflictError(f"{what} {self.describe(key)}: changed by a concurrent writer ({code})") from None
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ArtifactNotFound(f"not found: {self.describe(key)}") from None
            if code == "NoSuchBucket":
                raise StorageError(f"{what} {self.describe(key)}: bucket {self.bucket!r} does not exist") from None
            raise StorageError(f"{what} {self.describe(key)} failed: {code or status}: {err}") from None
        except BotoCoreError as err:
            raise StorageError(
                f"{what} {self.describe(key)} failed after {self.max_attempts} attempts "
                f"against {self._where()}: {err}"
            ) from None

    def put_file(self, local: Path, key: str) -> None:
        # One PUT per file (no multipart): S3 stores it whole or not at all, with a full-object checksum.
        with open(local, "rb") as body:
            self._call("upload to", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key),
                       Body=body, ChecksumAlgorithm="SHA256")

    def get_file(self, key: str, local: Path) -> None:
        response = self._call("download", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        with atomic_path(local) as tmp, open(tmp, "wb") as out:
            for chunk in response["Body"].iter_chunks(_CHUNK):
                out.write(chunk)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call("write", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data,
                   ChecksumAlgorithm="SHA256")

    def get_bytes(self, key: str) -> bytes:
        response = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except ArtifactNotFound:
            return False
        return True

    def _paginate(self, prefix: str, **kwargs):
        full = self._key(prefix).rstrip("/") + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("list", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full, **kwargs)))
        return full, pages

    def list_keys(self, prefix: str) -> list[str]:
        full, pages = self._paginate(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(obj["Key"][strip:] for page in pages for obj in page.get("Contents", []))

    def list_children(self, prefix: str) -> list[str]:
        full, pages = self._paginate(prefix, Delimiter="/")
        names = {p["Prefix"][len(full):].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])}
        names |= {o["Key"][len(full):] for page in pages for o in page.get("Contents", [])}
        return sorted(names)

    def checksum(self, key: str) -> tuple[str, int]:
        head = self._call("verify", key, self.client.head_object, Bucket=self.bucket, Key=self._key(key),
                          ChecksumMode="ENABLED")
        size = int(head["ContentLength"])
        stored = head.get("ChecksumSHA256")
        if stored and "-" not in stored and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            return base64.b64decode(stored).hex(), size
        response = self._call("verify", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        digest = hashlib.sha256()
        for chunk in response["Body"].iter_chunks(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest(), size

    def read_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            response = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except ArtifactNotFound:
            return None, None
        return response["Body"].read(), response["ETag"]

    def put_if(self, key: str, data: bytes, token: str | None) -> None:
        condition = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        self._call("conditional write of", key, self.client.put_object, Bucket=self.bucket, Key=self._key(key),
                   Body=data, ChecksumAlgorithm="SHA256", **condition)

    def last_modified(self, prefix: str) -> dt.datetime | None:
        _, pages = self._paginate(prefix)
        times = [obj["LastModified"] for page in pages for obj in page.get("Contents", [])]
        return max(times).astimezone(dt.UTC) if times else None

    def delete_prefix(self, prefix: str) -> None:
        keys = [self._key(k) for k in self.list_keys(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self._call("delete", prefix, self.client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": batch, "Quiet": True})


def open_store(uri: str, endpoint_url: str | None = None, max_attempts: int = 5,
               root: Path | None = None) -> ArtifactStore:
    """``s3://BUCKET/PREFIX`` -> S3Store; anything else is a directory (relative to ``root``)."""
    if is_s3_uri(uri):
        return S3Store(uri, endpoint_url=endpoint_url, max_attempts=max_attempts)
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = (root or Path.cwd()) / path
    return LocalStore(path)
