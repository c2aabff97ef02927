"""The backtest loop: replay each step as the DAG's run for that day, resumable step by step.

A step is the DAG's task sequence in one workspace ``<root>/steps/<key>``:
data view (the DAG's ingest) -> [validate_logs] -> encoder cadence -> train_encoder +
build_codebook, or reuse_encoder -> validate_sids -> mark_validated -> per variant:
train_ranker (warm-started from that variant's previous-step ranker) -> evaluate.
The cadence is :mod:`saviorrec.orchestration.cadence` itself, reading and writing the same run
manifests (``artifacts_validated``, ``encoder_refreshed_on``) under ``<root>/steps`` as the DAG
does under ``airflow.runs_root``; production is never consulted (a backtest has none).

Resume: a finished step writes ``<root>/state/step-NNN.json`` (atomically) with its rows; a rerun
with the same config skips those steps and redoes an unfinished one from a clean folder. The
config (resolved params + settings) is pinned in ``<root>/backtest.json``: another config in the
same root is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from saviorrec.atomic_files import write_json
from saviorrec.backtest import measures, views
from saviorrec.backtest.console import stage_output_to, step_log_path
from saviorrec.backtest.plan import (
    PlanError,
    Settings,
    Step,
    plan_steps,
    resolve_settings,
    step_overrides,
    variant_overrides,
    world_overrides,
)
from saviorrec.backtest.report import write_report
from saviorrec.config import Params, load_params, write_workspace_params
from saviorrec.orchestration.cadence import mark_validated, plan_cadence, reuse_encoder
from saviorrec.orchestration.ranker_warm_start import seed_ranker
from saviorrec.orchestration.workspace import read_manifest, reset_folder, update_manifest
from saviorrec.stages import run_stage
from saviorrec.workspace import Workspace

IDENTITY_FILE = "backtest.json"


class BacktestError(RuntimeError):
    """The backtest cannot run or continue; the message is one line saying why."""


class Timer:
    """Seconds per stage of one step; announces each stage on the terminal and sends the stage's
    own output to the step's log file."""

    def __init__(self, log: Path, echo: Callable[[str], None]) -> None:
        self.seconds: dict[str, float] = {}
        self.log, self.echo = log, echo

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self.echo(f"  {name}")
        started = time.perf_counter()
        try:
            with stage_output_to(self.log):
                return fn()
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)


def _identity(params: Params) -> dict:
    values = params.model_dump(mode="json")
    values["backtest"].pop("root", None)  # the same backtest may be reached by another spelling of its root
    return json.loads(json.dumps(values))


def _differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}")
    return found


def claim_root(root: Path, params: Params) -> None:
    """Pin this config to ``root``, or refuse when another backtest's config is pinned there."""
    identity = _identity(params)
    pinned = root / IDENTITY_FILE
    if pinned.is_file():
        old = json.loads(pinned.read_text()).get("identity", {})
        differs = _differences(old, identity)
        if differs:
            shown = ", ".join(differs[:4]) + (f" and {len(differs) - 4} more" if len(differs) > 4 else "")
            raise BacktestError(f"{root} holds a backtest with another config (differs in {shown}); "
                                "rerun it with the same arguments to continue, or use another --root")
        return
    root.mkdir(parents=True, exist_ok=True)
    write_json(pinned, {"identity": identity, "created_at": dt.datetime.now(dt.UTC).isoformat()})


def _world(root: Path, params: Params, settings: Settings, echo) -> Workspace:
    """The one synthetic world of a daily backtest (the real ingest stage, run once)."""
    folder, done = root / "world", root / "state" / "world.json"
    if done.is_file():
        return Workspace.open(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reset_folder(folder)
    write_workspace_params(folder, world_overrides(params, settings), base=root / "params.yaml")
    world = Workspace.open(folder)
    started = time.perf_counter()
    summary = run_stage("ingest", world)
    write_json(done, {"summary": summary, "seconds": round(time.perf_counter() - started, 2)})
    echo(f"world: {summary['days']} days, {summary['items']} items ({summary['first_day']}..{summary['last_day']})")
    return world


def _encoder_train_end(ws: Workspace) -> str | None:
    """The train_end of the encoder the step uses: its own, or (reused) that of the run that trained it."""
    folder = ws.root
    for _ in range(1000):  # a chain of reuses ends at the refresh that trained the encoder
        details = folder / ws.params.paths.reports / "details" / "encoder.json"
        if details.is_file():
            return json.loads(details.read_text()).get("train_end")
        source = read_manifest(folder).get("reused_from")
        if not source:
            return None
        folder = Path(source)
    return None


def replay_step(root: Path, settings: Settings, step: Step, params: Params, world: Workspace | None,
                previous: Workspace | None, echo) -> dict:
    """Run one step from a clean folder; returns its state (rows per variant + step facts)."""
    folder = root / "steps" / step.key
    folder.mkdir(parents=True, exist_ok=True)
    reset_folder(folder)
    write_workspace_params(folder, step_overrides(params, settings, step, root), base=root / "params.yaml")
    midnight = dt.datetime.combine(step.eval_start, dt.time(), tzinfo=dt.UTC)
    update_manifest(folder, logical_date=step.eval_start.isoformat(), logical_datetime=midnight.isoformat(),
                    data_day=step.eval_start.isoformat(), backtest_step=step.index)
    ws = Workspace.open(folder)
    log = step_log_path(root, step.index)
    echo(f"step {step.index + 1} {step.key}: running (stage output: {log})")
    timer = Timer(log, echo)
    view = timer.run("view", lambda: views.daily_view(world, ws, step) if world is not None
                     else views.monthly_view(ws, step))
    if settings.gates:
        timer.run("validate_logs", lambda: run_stage("validate_logs", ws))
    decision = timer.run("cadence", lambda: plan_cadence(
        ws, root / "steps", every=max(settings.encoder_every, 1), skip_requested=settings.encoder_every == 0,
        use_production=False, age_of=settings.age_of(), unit=settings.unit))
    if decision.refresh:
        timer.run("train_encoder", lambda: run_stage("train_encoder", ws))
        timer.run("build_codebook", lambda: run_stage("build_codebook", ws))
    else:
        timer.run("reuse_encoder", lambda: reuse_encoder(ws))
    timer.run("validate_sids", lambda: run_stage("validate_sids", ws))
    mark_validated(folder)
    shared = measures.encoder_measures(ws, previous)
    facts = {"step": step.index, "key": step.key, "eval_start": step.eval_start.isoformat(),
             "eval_end": step.eval_end.isoformat(), "encoder_refreshed": decision.refresh,
             "cadence_reason": decision.reason, "encoder_train_end": _encoder_train_end(ws),
             "data_first_day": view["first_day"], "data_last_day": view["last_day"], **shared}
    rows = []
    for variant in settings.variants:
        vws = Workspace.open(folder, overrides=variant_overrides(variant))
        before = Workspace.open(previous.root, overrides=variant_overrides(variant)) if previous else None
        vtimer = Timer(log, lambda line, v=variant: echo(f"{line}[{v}]"))
        # the variant's previous-step ranker, which train_ranker continues (ranker.warm_start)
        seeded = before is not None and seed_ranker(before, vws)
        trained = vtimer.run("train_ranker", lambda v=vws: run_stage("train_ranker", v))
        vtimer.run("evaluate", lambda v=vws: run_stage("evaluate", v))
        seconds = timer.seconds | vtimer.seconds
        rows.append({**facts, "variant": variant, **measures.ranker_metrics(vws),
                     "ranker_warm_start": bool(trained.get("warm_start")) and seeded,
                     "ranker_trained_until": trained.get("trained_until"),
                     **{f"seconds_{name}": value for name, value in seconds.items()}})
    return {"step": step.index, "key": step.key, "rows": rows, "seconds": timer.seconds,
            "finished_at": dt.datetime.now(dt.UTC).isoformat()}


def _line(state: dict, total: int) -> str:
    row = state["rows"][0]
    encoder = "encoder refreshed" if row["encoder_refreshed"] else "encoder reused"
    aucs = ", ".join(f"{r['variant']} new {r['new_auc']:.4f} / all {r['auc']:.4f}" if r["new_auc"] is not None
                     else f"{r['variant']} all {r['auc']:.4f}" for r in state["rows"])
    return f"step {state['step'] + 1}/{total} {state['key']}: {encoder}; {aucs}"


def run_backtest(params_file: str | Path, overrides: Mapping[str, Any] | None = None,
                 echo: Callable[[str], None] = print) -> dict:
    """Replay the backtest ``params.backtest`` describes (``overrides`` = the CLI's flags and --set);
    continue after the last finished step of an earlier run of the same config. Returns the report."""
    params_file = Path(params_file).resolve()
    params = load_params(params_file, overrides)
    if "://" not in params.data.path:  # as the DAG's prepare does: steps live elsewhere than the params file
        overrides = {**(overrides or {}), "data.path": str((params_file.parent / params.data.path).resolve())}
        params = load_params(params_file, overrides)
    try:
        settings = resolve_settings(params)
    except PlanError as err:
        raise BacktestError(str(err)) from None
    root = Path(params.backtest.root).resolve()
    claim_root(root, params)
    write_workspace_params(root, dict(overrides or {}), base=params_file)
    steps = plan_steps(params, settings)
    world = _world(root, params, settings, echo) if settings.step == "day" else None
    states, previous = [], None
    for step in steps:
        state_file = root / "state" / f"step-{step.index:03d}.json"
        if state_file.is_file():
            state = json.loads(state_file.read_text())
            echo(f"step {step.index + 1}/{len(steps)} {step.key}: finished earlier, kept")
        else:
            state = replay_step(root, settings, step, params, world, previous, echo)
            write_json(state_file, state)
            echo(_line(state, len(steps)))
        states.append(state)
        previous = Workspace.open(root / "steps" / step.key)
    world_state = root / "state" / "world.json"
    once = {"ingest (world)": json.loads(world_state.read_text())["seconds"]} if world is not None else {}
    return write_report(root, [row for state in states for row in state["rows"]], settings, echo, once=once)
