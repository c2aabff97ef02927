"""Small fake model workspaces for registry tests (a few bytes per artifact: fast)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_workspace


class FailAfterUploads:
    """Store mixin: raises after ``remaining`` file uploads, as a crash or a dropped connection would."""

    remaining: int

    def put_file(self, local, key):
        from saviorrec.storage.artifacts import StorageError

        if self.remaining == 0:
            raise StorageError(f"injected failure uploading {key}")
        self.remaining -= 1
        super().put_file(local, key)


def fake_model_workspace(root: Path, tag: str, overrides: dict | None = None):
    """A workspace whose artifacts are tiny files carrying ``tag``, with passing gate files."""
    from saviorrec.workspace import Workspace

    make_workspace(root, overrides)
    ws = Workspace.open(root)
    files = {
        ws.path("encoder") / "model.pt": f"encoder {tag}",
        ws.path("encoder") / "config.json": json.dumps({"tag": tag}),
        ws.path("codebook") / "model.pt": f"codebook {tag}",
        ws.path("codebook") / "config.json": json.dumps({"tag": tag}),
        ws.path("embeddings"): f"z {tag}",
        ws.path("text_features"): f"minilm {tag}",
        ws.path("sids"): f"sids {tag}",
        ws.path("sids_generic"): f"sids generic {tag}",
        ws.path("ranker") / "model.ckpt": f"ranker {tag}" * 100,
        ws.path("ranker") / "config.json": json.dumps({"tag": tag}),
        ws.path("items"): f"items {tag}",
        ws.metrics_file("ranker"): json.dumps({"auc_ctr": 0.7, "tag": tag}),
    }
    for gate in ("validate_logs", "validate_sids", "validate_model"):
        files[ws.gate_file(gate)] = json.dumps({"gate": gate, "passed": True, "critical_failures": []})
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ws


def ranker_tag(model_ws) -> str:
    """Which fake model a workspace holds (reads its ranker config)."""
    return json.loads((model_ws.path("ranker") / "config.json").read_text())["tag"]
