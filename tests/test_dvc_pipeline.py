"""dvc.yaml: the declared code deps match the imports; `dvc repro` end to end on the tiny preset."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import saviorrec.stages

REPO = Path(__file__).resolve().parents[1]
STAGES = list(saviorrec.stages.STAGES)  # the one registry of stages
OWN = ("saviorrec", "pipelines", "data_checks")


def _module_file(name: str) -> Path | None:
    for base in (REPO / "src", REPO):
        for candidate in (base / (name.replace(".", "/") + ".py"), base / name.replace(".", "/") / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in OWN}


def import_closure(module: str) -> set[str]:
    """Repo files a module imports, directly or not (parents' __init__ included)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += _imports(path, name)
    return {p.relative_to(REPO).as_posix() for p in seen.values()}


def test_every_stage_declares_the_code_it_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == STAGES
    for stage in STAGES:
        spec = stages[stage]
        assert spec["cmd"] == f"python -m pipelines.{stage}"
        deps = [d for d in spec["deps"] if "${" not in d]
        for dep in deps:
            assert (REPO / dep).exists(), f"{stage}: declared dep {dep} does not exist"
        missing = sorted(
            f for f in import_closure(f"pipelines.{stage}")
            if not f.endswith("__init__.py") and not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)
        )
        assert not missing, f"dvc.yaml stage {stage} imports but does not declare: {missing}"


def _param_names(spec: dict) -> set[str]:
    return {next(iter(p)) if isinstance(p, dict) else p for p in spec["params"]}


def test_params_are_declared_per_stage():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in STAGES:
        # the active preset's overlay as a whole: other presets' overlays are not dependencies
        assert {"preset", "params/${preset}.yaml"} <= _param_names(stages[stage]), stage
    assert [s for s in STAGES if "seed" in _param_names(stages[s])] == [
        "ingest", "train_encoder", "build_codebook", "train_ranker", "baseline", "promote"]
    # Ranker params reach only the ranker stages (the baseline trains with the same hyperparameters);
    # codebook params only the codebook and what reads its size.
    assert [s for s in STAGES if "ranker" in stages[s]["params"]] == ["train_ranker", "baseline"]
    assert [s for s in STAGES if "codebook" in stages[s]["params"]] == ["build_codebook"]


# ---- end to end --------------------------------------------------------------------------

def _copy_repo(dest: Path) -> None:
    """The working tree as a fresh clone would have it (tracked + untracked-not-ignored files)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "artifacts/", "metrics/", "plots/", "reports/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _run(cwd: Path, env: dict, *args: str, timeout: float = 1500) -> str:
    """Run a command in its own process group (a timeout also stops the stage DVC started)."""
    proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"{' '.join(args)} timed out after {timeout}s:\n{output[-4000:]}") from None
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
    return output


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def _scratch_repo(repo: Path, edit_params: Callable[[dict], None] | None = None) -> dict:
    """A fresh clone of the working tree in ``repo`` (params.yaml edited, then committed); the env for DVC."""
    _copy_repo(repo)
    if edit_params:
        raw = yaml.safe_load((repo / "params.yaml").read_text())
        edit_params(raw)
        (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": f"{repo / 'src'}:{repo}", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(repo, env, "git", "init", "-q")
    _run(repo, env, "git", "add", "-A")
    _run(repo, env, "git", "commit", "-qm", "fresh clone")
    return env


def _stand_in_outputs(repo: Path) -> None:
    """A placeholder for every stage output, so `dvc commit` can record the pipeline without running it."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for spec in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for out in spec.get(kind, []):
                path = repo / re.sub(r"\$\{paths\.(\w+)\}", lambda m: params["paths"][m.group(1)],
                                     next(iter(out)) if isinstance(out, dict) else out)
                target = path if path.suffix else path / "placeholder"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("stand-in\n")


def _up_to_date(repo: Path, env: dict) -> bool:
    return "up to date" in _run(repo, env, sys.executable, "-m", "dvc", "status")


@pytest.mark.timeout(600)
def test_editing_another_presets_overlay_reruns_nothing(tmp_path):
    """The default pipeline depends on params/default.yaml, not on the tiny overlay the tests use."""
    repo = tmp_path / "repo"
    env = _scratch_repo(repo)
    _stand_in_outputs(repo)
    _run(repo, env, sys.executable, "-m", "dvc", "commit", "--force", "--quiet")
    assert _up_to_date(repo, env)

    tiny = yaml.safe_load((repo / "params/tiny.yaml").read_text())
    tiny["ranker"]["epochs"] += 1
    tiny["synthetic"]["n_days"] += 1
    (repo / "params/tiny.yaml").write_text(yaml.safe_dump(tiny))
    assert _up_to_date(repo, env)

    # ... while the active overlay is a dependency of every stage.
    (repo / "params/default.yaml").write_text(yaml.safe_dump({"ranker": {"epochs": 2}}))
    status = _run(repo, env, sys.executable, "-m", "dvc", "status", "--json")
    assert sorted(json.loads(status)) == sorted(STAGES)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # ~4 minutes on two free cores; far more on a shared machine
def test_dvc_repro_end_to_end(tmp_path, s3_bucket):
    def tiny(raw: dict) -> None:
        raw["preset"] = "tiny"

    repo = tmp_path / "repo"
    env = _scratch_repo(repo, tiny)
    dvc = [sys.executable, "-m", "dvc"]

    first = _run(repo, env, *dvc, "repro")
    # evaluate reads the baseline's report (auc_by_bucket draws both), so DVC runs the baseline first
    assert _ran(first) == [s for s in STAGES if s != "evaluate"][:7] + ["evaluate", *STAGES[8:]]
    pointer = json.loads((repo / "registry/models/saviorrec/production.json").read_text())
    assert pointer["version"] == "v1" and pointer["promoted_by"] == "dvc promote stage"  # registry.promote: first
    receipt = json.loads((repo / "reports/promotion.json").read_text())
    assert receipt["production"] == "v1" and all(receipt["gates"].values())
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert "ranker" in lock["train_ranker"]["params"]["params.yaml"]

    # The promoted bundle is a workspace: lineage names this commit and the data hashes; it scores.
    from saviorrec.config import load_params
    from saviorrec.storage.registry import open_registry
    from saviorrec.workspace import Workspace

    registry = open_registry(load_params(repo / "params.yaml"), root=repo, cache_dir=tmp_path / "cache")
    model_ws = registry.production_workspace()
    lineage = json.loads((model_ws.root / "lineage.json").read_text())
    head = _run(repo, env, "git", "rev-parse", "HEAD").strip()
    assert lineage["git"]["commit"] == head
    assert lineage["data"]["data/events"] == lock["ingest"]["outs"][0]["md5"]
    _check_score_and_sid(repo, tmp_path, model_ws)
    # The same commands from an S3 registry: publish this run there, then score / assign from it.
    s3_params = load_params(repo / "params.yaml", overrides={"registry.uri": f"s3://{s3_bucket}/models"})
    s3_registry = open_registry(s3_params, root=repo, cache_dir=tmp_path / "s3cache")
    s3_registry.promote(s3_registry.publish(Workspace(repo, s3_params)))
    _check_score_and_sid(repo, tmp_path, model_ws, "--set", f"registry.uri=s3://{s3_bucket}/models")

    # Nothing changed: nothing runs.
    assert "up to date" in _run(repo, env, *dvc, "status")
    assert _ran(_run(repo, env, *dvc, "repro")) == []

    # A ranker param: only the ranker stages (the baseline trains with the same hyperparameters) and what follows them.
    # An experiment publishes its model (v2) but leaves production alone, and says how to promote it.
    exp = _run(repo, env, *dvc, "exp", "run", "-S", "ranker.lr=0.004")
    assert sorted(_ran(exp)) == sorted(["train_ranker", "evaluate", "baseline", "validate_model", "promote"])
    production = repo / "registry/models/saviorrec/production.json"
    assert json.loads(production.read_text())["version"] == "v1"
    assert (repo / "registry/models/saviorrec/v2/manifest.json").is_file()
    assert "production stays v1" in exp and "saviorrec registry promote v2" in exp
    assert "registry.promote=always" in exp
    # Asked explicitly, it does: only promote reruns (the policy is no input of the gates).
    asked = _run(repo, env, *dvc, "exp", "run", "-S", "registry.promote=always")
    assert _ran(asked) == ["promote"]
    pointer = json.loads(production.read_text())
    assert pointer["version"] == "v3" and pointer["previous"] == "v1"
    assert pointer["promoted_by"].startswith("dvc exp run ")
    shown = _run(repo, env, *dvc, "metrics", "show", "--json")
    assert "ctr_auc" in shown
    _run(repo, env, *dvc, "metrics", "diff")
    plots = _run(repo, env, *dvc, "plots", "show", "-o", str(tmp_path / "plots"))
    assert (tmp_path / "plots" / "index.html").is_file(), plots


def _check_score_and_sid(repo: Path, tmp_path: Path, model_ws, *extra: str) -> None:
    """`saviorrec score` and `saviorrec sid` with the production model (in-process CLI)."""
    import pandas as pd
    from typer.testing import CliRunner

    from saviorrec.cli import app
    from saviorrec.data import io

    params = ["--params", str(repo / "params.yaml"), *extra]
    runner = CliRunner()
    last_day = io.list_days(repo / "data/events")[-1]
    io.write_parquet(io.read_event_day(repo / "data/events", last_day).head(300), tmp_path / "events.parquet")
    result = runner.invoke(app, ["score", "--events", str(tmp_path / "events.parquet"), "--history",
                                 str(repo / "data/events"), "--out", str(tmp_path / "scores.parquet"), *params])
    assert result.exit_code == 0, result.output
    scores = io.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 300 and scores["p_ctr"].between(0, 1).all()
    assert (scores["p_ctcvr"] <= scores["p_ctr"] + 1e-9).all()

    catalog = io.read_items(model_ws.path("items"))
    new = catalog.head(5).assign(item_id=catalog["item_id"].max() + 1 + pd.RangeIndex(5), image_ref=None)
    io.write_parquet(new, tmp_path / "new_items.parquet")
    result = runner.invoke(app, ["sid", "--items", str(tmp_path / "new_items.parquet"),
                                 "--out", str(tmp_path / "new_sids.parquet"), *params])
    assert result.exit_code == 0, result.output
    sids = io.read_parquet(tmp_path / "new_sids.parquet")
    assert sids["item_id"].tolist() == new["item_id"].tolist()
    assert sids["vector"].map(len).eq(model_ws.params.encoder.embedding_dim).all()
    existing = set(io.read_parquet(model_ws.path("sids"))["sid"])
    assert sids["sid"].is_unique and not existing & set(sids["sid"])
