"""A real S3 endpoint over HTTP on 127.0.0.1 (moto's threaded server) for storage tests.

Registered as a pytest plugin from tests/conftest.py. ``s3_server`` is one server per
session; ``s3_bucket`` gives each test a fresh bucket and points boto3 (and DVC) at the
server through the environment only: AWS_ENDPOINT_URL and dummy credentials.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass

import pytest


@dataclass
class S3Server:
    endpoint_url: str

    def client(self):
        from saviorrec.storage.s3 import s3_client

        return s3_client(self.endpoint_url, 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    mp = pytest.MonkeyPatch()
    for key, value in _DUMMY_ENV.items():
        mp.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        mp.delenv(key, raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        mp.undo()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """A fresh, empty bucket; AWS_ENDPOINT_URL points at the local server for this test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
