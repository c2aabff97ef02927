"""A real S3 endpoint over HTTP on 127.0.0.1 (moto's server) for storage tests.

Registered as a pytest plugin from tests/conftest.py. ``s3_server`` is one server per
session; ``s3_bucket`` gives each test a fresh bucket and points boto3 (and DVC) at the
server through the environment only: AWS_ENDPOINT_URL and dummy credentials.

``stoppable_s3`` is a private endpoint a test can stop in the middle of an operation and
start again on the same port (``StoppableS3Server``): the outage tests in test_s3_faults.py.
"""

from __future__ import annotations

import re
import socket
import threading
import uuid
from dataclasses import dataclass, field

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
def aws_test_env():
    """Dummy credentials for the whole session; no profile or real token can leak in."""
    mp = pytest.MonkeyPatch()
    for key, value in _DUMMY_ENV.items():
        mp.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        mp.delenv(key, raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def s3_server(aws_test_env):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """A fresh, empty bucket; AWS_ENDPOINT_URL points at the local server for this test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


# ---- an endpoint that goes away mid-operation ------------------------------------------------

@dataclass
class Trip:
    """Fires on request number ``after + 1`` whose method and path match (once)."""

    method: str
    path: re.Pattern
    after: int
    seen: int = 0
    tripped_on: str | None = None
    reached: threading.Event = field(default_factory=threading.Event)   # it fired
    released: threading.Event = field(default_factory=threading.Event)  # a held request may go on
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, method: str, path: str) -> bool:
        if method != self.method or not self.path.search(path):
            return False
        with self._lock:
            self.seen += 1
            if self.seen != self.after + 1:
                return False
            self.tripped_on = path
            self.reached.set()
            return True


class StoppableS3Server:
    """moto's S3 server on 127.0.0.1 that stops for real in the middle of a request.

    ``stop_during(method, path_regex, after=N)`` arms it: the (N+1)-th matching request is
    cut after half of its body arrived, the listening socket closes (new connections are
    refused) and every open keep-alive connection is shut, as when the process dies.
    ``hold_during(...)`` instead keeps the matching request waiting: an upload in progress.
    ``start()`` again serves the same port and, since moto keeps its buckets in module
    state, the same objects: an outage, not a wipe.
    """

    HOLD_LIMIT_S = 30.0  # a held request goes on by itself after this: no test can hang on it

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        self.trip: Trip | None = None
        self.hold: Trip | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        owner = self

        class TrackedHandler(MotoRequestHandler):
            def setup(self):
                super().setup()
                with owner._lock:
                    owner._connections.add(self.connection)

            def connection_dropped(self, error, environ=None):
                self.close_connection = True  # the unread rest of a cut body is not a next request

            def finish(self):
                with owner._lock:
                    owner._connections.discard(self.connection)
                super().finish()

        self.trip = self.hold = None
        app = self._cut_on_trip(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=TrackedHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.stopped.clear()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        self._thread.join(timeout=10)  # serve_forever closes the listening socket on its way out
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.stopped.set()

    def stop_during(self, method: str, path_regex: str, after: int = 0) -> Trip:
        self.trip = Trip(method, re.compile(path_regex), after)
        return self.trip

    def hold_during(self, method: str, path_regex: str, after: int = 0) -> Trip:
        """The (N+1)-th matching request waits (``.reached`` set) until ``.released``: an upload in progress."""
        self.hold = Trip(method, re.compile(path_regex), after)
        return self.hold

    def _cut_on_trip(self, app):
        dying = threading.Event()  # this run of the server only: a restart serves again

        def middleware(environ, start_response):
            # werkzeug treats a ConnectionError as a dropped client: no response, no log noise.
            if dying.is_set():  # another connection's request while the server goes down
                raise ConnectionAbortedError("endpoint stopped")
            trip = self.trip
            if trip is not None and trip.hit(environ["REQUEST_METHOD"], environ["PATH_INFO"]):
                dying.set()
                length = int(environ.get("CONTENT_LENGTH") or 0)
                environ["wsgi.input"].read(length // 2)  # mid-transfer: half the body has arrived
                self.stop()
                raise ConnectionAbortedError(f"endpoint stopped during {trip.method} {trip.tripped_on}")
            hold = self.hold
            if hold is not None and hold.hit(environ["REQUEST_METHOD"], environ["PATH_INFO"]):
                hold.released.wait(self.HOLD_LIMIT_S)
            return app(environ, start_response)

        return middleware

    def client(self, max_attempts: int = 2):
        from saviorrec.storage.s3 import s3_client

        return s3_client(self.endpoint_url, max_attempts)


@pytest.fixture
def stoppable_s3(aws_test_env, monkeypatch):
    """A private S3 endpoint (plus one bucket, ``.bucket``) a test may stop and restart."""
    server = StoppableS3Server()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    server.bucket = f"test-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=server.bucket)
    try:
        yield server
    finally:
        server.stop()
