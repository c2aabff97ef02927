"""Secrets stay secret: S3 credentials reach no log, file or registry object; the Airflow scripts
never print the admin password.

The pipeline test runs every stage of the tiny preset through promote against the moto S3 server,
with distinctive credentials in the environment (the only place the pipeline takes them from),
then scans the logs, stdout/stderr, every byte written under the workspace (metrics, reports,
Data Docs, gate verdicts, lineage, the registry cache) and every object under the registry prefix.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from conftest import StageRunner, make_workspace
from s3_server import free_port

from saviorrec.stages import run_stage
from saviorrec.storage.filesystem import _s3_filesystem
from saviorrec.storage.registry import open_registry
from saviorrec.storage.s3 import s3_client

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def leak_check_credentials(s3_bucket, monkeypatch):
    """Distinctive credentials (moto accepts any) for this test; clients built before it are dropped
    so every S3 call signs with them, and again after it so no later test inherits them."""
    key_id = "AKIA" + uuid.uuid4().hex[:16].upper()
    secret = "leakcheck" + uuid.uuid4().hex + "Zq9"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    s3_client.cache_clear()
    _s3_filesystem.cache_clear()
    yield key_id, secret
    s3_client.cache_clear()
    _s3_filesystem.cache_clear()


def files_holding(values: dict[str, str], files: dict[str, bytes]) -> list[str]:
    return [f"{name} holds the {what}" for name, data in files.items()
            for what, value in values.items() if value.encode() in data]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the whole tiny pipeline: ~1 CPU-minute, about 3 minutes on a shared 2-core machine
def test_s3_credentials_reach_no_log_file_or_registry_object(s3_bucket, leak_check_credentials, tmp_path,
                                                            caplog, capfd):
    key_id, secret = leak_check_credentials
    both = {"access key id": key_id, "secret access key": secret}
    caplog.set_level(logging.INFO)  # what the stage commands and Airflow tasks log
    runner = StageRunner(make_workspace(tmp_path / "ws", {"registry.uri": f"s3://{s3_bucket}/team", "registry.promote": "always"}))
    assert runner.run("promote")["version"] == "v1"
    # a second round: the model gate compares with production downloaded from S3, promote publishes v2
    with caplog.at_level(logging.DEBUG):  # botocore's request logs included
        run_stage("validate_model", runner.ws)
        assert run_stage("promote", runner.ws)["production"] == "v2"

    registry = open_registry(runner.params, root=runner.root)
    signer = registry.store.client._request_signer._credentials  # the client the stages used (cached)
    assert (signer.access_key, signer.secret_key) == (key_id, secret)  # the credentials were in play

    out, err = capfd.readouterr()
    logged_at_info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    logged_at_debug = "\n".join(r.getMessage() for r in caplog.records)
    leaks = files_holding(both, {"stdout": out.encode(), "stderr": err.encode(), "INFO log": logged_at_info.encode()})
    # at DEBUG, botocore's request log shows the Authorization header (the key id, a signature): never the secret
    leaks += files_holding({"secret access key": secret}, {"DEBUG log": logged_at_debug.encode()})

    written = {str(path.relative_to(runner.root)): path.read_bytes()
               for path in runner.root.rglob("*") if path.is_file()}
    assert any(name.startswith("reports/") for name in written) and len(written) > 50
    leaks += files_holding(both, written)

    client = registry.store.client
    keys = [obj["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="team/")
            for obj in page.get("Contents", [])]
    assert "team/models/saviorrec/production.json" in keys and any(k.endswith("manifest.json") for k in keys)
    leaks += files_holding(both, {f"s3://{s3_bucket}/{key}": client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
                                  for key in keys})
    assert not leaks, leaks


# ---- the Airflow admin password ------------------------------------------------------------

FAKE_API_SERVER = textwrap.dedent("""
    # The start of a real API server: the simple auth manager generates the admin password, prints
    # it (as Airflow does on first start) and writes it to its file. Then it either dies (a port
    # taken, a bad config) or answers the health check like a server that came up.
    import http.server, os, sys
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    SimpleAuthManager().init()
    sys.stdout.flush()
    if os.environ["FAKE_API_SERVER"] == "dies":
        sys.exit("api-server: [Errno 98] Address already in use")

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

    http.server.HTTPServer(("127.0.0.1", int(os.environ["SAVIORREC_AIRFLOW_PORT"])), Health).serve_forever()
""")


def fake_airflow_venv(folder: Path) -> Path:
    """A venv whose ``airflow`` and ``python`` serve airflow_up.sh: the API server as above, the
    other servers idle (no scheduler starts for real), every other python call the real interpreter."""
    real = sys.executable
    (folder / "bin").mkdir(parents=True)
    (folder / "api_server.py").write_text(FAKE_API_SERVER)
    scripts = {
        "airflow": ['case "$1" in',
                    "  db|pools) exit 0 ;;",
                    f"  api-server) exec {real} {folder / 'api_server.py'} ;;",
                    "  *) exec sleep 120 ;;",
                    "esac"],
        "python": ['if [ "$1 $2" = "-m saviorrec.orchestration.preload" ]; then exec sleep 120; fi',
                   f'exec {real} "$@"'],
    }
    for name, body in scripts.items():
        path = folder / "bin" / name
        path.write_text("\n".join(["#!/usr/bin/env bash", *body]) + "\n")
        path.chmod(0o755)
    return folder


@pytest.mark.timeout(300)
@pytest.mark.parametrize("api_server", ["dies", "comes_up"])
def test_airflow_up_never_prints_the_admin_password(tmp_path, api_server):
    """airflow_up.sh names the password file; when a server dies it shows that server's log, which
    holds the generated password: the value must not reach the terminal (or a CI log) either way."""
    home = tmp_path / "airflow_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SAVIORREC_"))} | {
        "AIRFLOW_HOME": str(home),
        "SAVIORREC_AIRFLOW_VENV": str(fake_airflow_venv(tmp_path / "venv")),
        "SAVIORREC_AIRFLOW_PORT": str(free_port()),
        "FAKE_API_SERVER": api_server,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    try:
        proc = subprocess.run(["bash", str(REPO / "scripts" / "airflow_up.sh")], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=240)
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "airflow_down.sh")], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    printed = proc.stdout + proc.stderr
    password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    assert password in (home / "run" / "api-server.log").read_text()  # the server did print it, to its log
    assert password not in printed, printed
    if api_server == "dies":
        assert proc.returncode == 1 and "api-server exited" in printed and "Address already in use" in printed, printed
    else:
        assert proc.returncode == 0 and "simple_auth_manager_passwords.json.generated" in printed, printed
