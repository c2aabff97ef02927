"""Resume a retried training task from its last Lightning checkpoint.

A stage that can resume says so in its signature: ``run(params, ws, ckpt_path=None)`` (the
Lightning ``Trainer.fit(ckpt_path=...)`` convention) or ``run(params, ws, resume=False)``.
On the first try nothing is passed, so a fresh run never picks up a stale checkpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Where each training stage keeps its checkpoints (params.paths names).
CHECKPOINT_DIRS = {"train_ranker": "ranker", "train_encoder": "encoder", "build_codebook": "codebook"}


def last_checkpoint(folder: Path) -> Path | None:
    """``last.ckpt`` when Lightning wrote one, else the newest ``*.ckpt`` below the folder."""
    if not folder.is_dir():
        return None
    last = sorted(folder.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if last:
        return last[-1]
    ckpts = sorted(folder.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpts[-1] if ckpts else None


def resume_options(stage: str, run: Callable[..., Any], ws, try_number: int) -> dict[str, Any]:
    """Keyword options that make a retried stage continue from its checkpoint (empty on try 1)."""
    if try_number <= 1 or stage not in CHECKPOINT_DIRS:
        return {}
    accepted = inspect.signature(run).parameters
    ckpt = last_checkpoint(ws.path(CHECKPOINT_DIRS[stage]))
    if "ckpt_path" in accepted and ckpt is not None:
        return {"ckpt_path": str(ckpt)}
    if "resume" in accepted:
        return {"resume": True}
    return {}
