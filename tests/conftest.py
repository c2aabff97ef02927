"""Shared test set-up: offline model loading, a private Airflow home, tiny workspaces."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = Path(os.environ.get("SAVIORREC_MOVIELENS", REPO.parent / "shared" / "data" / "movielens-small-dev"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
sys.path.insert(0, str(REPO))  # `pipelines`, `data_checks`, `dags` import from the repo root

pytest_plugins = ["s3_server"]  # local S3 endpoint fixtures (moto server on 127.0.0.1)


@pytest.fixture(autouse=True)
def _outside_any_airflow_task(monkeypatch):
    """Airflow's in-process ``dag.test()`` exports its task context (AIRFLOW_CTX_*) into os.environ
    and leaves it there; later tests would then look like they run inside that Airflow task."""
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CTX_")]:
        monkeypatch.delenv(name)


def make_workspace(root: Path, overrides: dict | None = None, preset: str = "tiny") -> Path:
    """A fresh workspace folder with its resolved params.yaml (repository params < preset < overrides)."""
    from saviorrec.config import write_workspace_params

    write_workspace_params(root, {"preset": preset, **(overrides or {})}, base=REPO / "params.yaml")
    return root


class StageRunner:
    """Runs stages in one workspace, each at most once, upstream stages first."""

    UPSTREAM = {
        "ingest": [],
        "validate_logs": ["ingest"],
        "train_encoder": ["ingest"],
        "build_codebook": ["train_encoder"],
        "validate_sids": ["build_codebook"],
        "train_ranker": ["build_codebook"],
        "evaluate": ["train_ranker"],
        "baseline": ["train_encoder"],  # content_frozen reads the plain text features only
        "validate_model": ["evaluate", "baseline"],
        "promote": ["validate_logs", "validate_sids", "validate_model"],
    }

    def __init__(self, root: Path):
        from saviorrec.workspace import Workspace

        self.root = root
        self.ws = Workspace.open(root)
        self.params = self.ws.params
        self.summaries: dict[str, dict] = {}

    def run(self, stage: str) -> dict:
        if stage not in self.summaries:
            for upstream in self.UPSTREAM[stage]:
                self.run(upstream)
            from saviorrec.stages import run_stage

            self.summaries[stage] = run_stage(stage, self.ws)
        return self.summaries[stage]


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> StageRunner:
    """One tiny synthetic workspace per test session; call ``.run(stage)`` to get outputs.

    Tests must not modify its files: copy what you want to break (see ``copy_workspace``).
    """
    return StageRunner(make_workspace(tmp_path_factory.mktemp("tiny_ws")))


@pytest.fixture
def copy_workspace(tmp_path):
    """Copy a workspace (e.g. ``tiny_pipeline.root``) to a private folder and open it."""

    def _copy(src: Path) -> StageRunner:
        dst = tmp_path / "ws"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".cache"))
        return StageRunner(dst)

    return _copy


@pytest.fixture(scope="session")
def movielens_path() -> Path:
    if not (MOVIELENS / "ratings.csv").is_file():
        pytest.skip(f"MovieLens dev data not found at {MOVIELENS} (set SAVIORREC_MOVIELENS)")
    return MOVIELENS
