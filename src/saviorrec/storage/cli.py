"""`saviorrec registry ...`: list, inspect, promote and roll back model versions.

    saviorrec registry list
    saviorrec registry show v3
    saviorrec registry promote v3
    saviorrec registry rollback
    saviorrec registry gc [--older-than 1h] [--yes]   # incomplete versions left by dead uploads
    saviorrec registry list --set registry.uri=s3://my-bucket/saviorrec   # S3 instead of registry/
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import typer

registry_app = typer.Typer(help="The model registry (registry.uri: a local folder or s3://BUCKET/PREFIX).",
                           no_args_is_help=True)

ParamsOption = typer.Option("params.yaml", "--params", help="params file (registry: section)")
SetOption = typer.Option(None, "--set", metavar="KEY=VALUE", help="override a param, e.g. --set registry.uri=s3://bucket/prefix")


def open_from_cli(params_path: str, sets: list[str] | None):
    """The registry named by params (+ --set overrides); exit 1 with a message on bad params."""
    from saviorrec.config import ParamsError, load_params, parse_set
    from saviorrec.storage.registry import open_registry

    try:
        params = load_params(params_path, overrides=parse_set(sets or []))
    except ParamsError as err:
        fail(err)
    return open_registry(params, root=Path(params_path).resolve().parent)


def fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1)


def guarded(fn):
    """Run a registry call; storage/registry problems become one line on stderr and exit 1."""
    from saviorrec.storage.artifacts import StorageError
    from saviorrec.storage.registry import RegistryError

    try:
        return fn()
    except (RegistryError, StorageError) as err:
        fail(err)


def echo_json(payload) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


@registry_app.command("list")
def list_versions(params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Every version, oldest first; `*` marks production, `(incomplete)` an unfinished upload."""
    registry = open_from_cli(params, set_)
    rows = guarded(registry.list)
    typer.echo(f"{registry.name} @ {registry.store.describe(registry.prefix)}")
    if not rows:
        typer.echo("  (no versions yet: `make run` or `python -m pipelines.promote` publishes one)")
    for row in rows:
        mark = "*" if row["production"] else " "
        state = "" if row["complete"] else "  (incomplete)"
        typer.echo(f"{mark} {row['version']:<6} {row['created_at'] or '-':<26} {row['files']:>4} files{state}")


@registry_app.command("show")
def show(version: str = typer.Argument(..., help="vN, `production` or `latest`"),
         params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Manifest summary, lineage (git commit, dvc.lock data hashes) and metrics of a version."""
    registry = open_from_cli(params, set_)
    echo_json(guarded(lambda: registry.show(registry.resolve(version))))


@registry_app.command("promote")
def promote(version: str = typer.Argument(..., help="vN or `latest`"),
            params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Verify every file of VERSION, then move the production pointer to it."""
    registry = open_from_cli(params, set_)
    echo_json(guarded(lambda: registry.promote(registry.resolve(version))))


@registry_app.command("rollback")
def rollback(params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Point production back at the previously promoted version."""
    registry = open_from_cli(params, set_)
    echo_json(guarded(registry.rollback))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90m``, ``1h``, ``2d``, ``30s`` -> timedelta; ValueError naming the expected form."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"--older-than {text!r}: expected a number and a unit s, m, h or d "
                         f"(e.g. 90m, 1h, 2d)")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_age(age: dt.timedelta) -> str:
    """The two largest units: 2d03h, 1h05m, 4m10s, 12s."""
    seconds = int(age.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@registry_app.command("gc")
def gc(older_than: str = typer.Option("1h", "--older-than", metavar="AGE",
                                      help="only versions nothing wrote to for AGE (30s, 90m, 1h, 2d): "
                                           "a younger one may be an upload still running"),
       yes: bool = typer.Option(False, "--yes", "-y",
                                help="delete (default: only print what would be removed)"),
       params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Remove versions left incomplete (no manifest) by uploads that died; dry run unless --yes.

    Complete versions and any version the production pointer names are never touched.
    """
    try:
        age_limit = parse_duration(older_than)
    except ValueError as err:
        fail(err)
    registry = open_from_cli(params, set_)
    rows = guarded(lambda: registry.gc(age_limit, delete=yes))
    typer.echo(f"{registry.name} @ {registry.store.describe(registry.prefix)}")
    if not rows:
        typer.echo("  nothing to remove: no incomplete version")
        return
    for row in rows:
        verb = "keep" if row["action"] == "keep" else "removed" if row["removed"] else "would remove"
        files = f"{row['files']} file{'' if row['files'] == 1 else 's'}"
        typer.echo(f"  {verb:<12} {row['version']:<6} {row['reason']}; {files}, "
                   f"last write {format_age(row['age'])} ago")
    removable = sum(row["action"] == "remove" for row in rows)
    if not yes and removable:
        typer.echo(f"dry run: nothing removed; re-run with --yes to remove {removable} incomplete version(s)")


@registry_app.command("summary")
def summary(params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Where the promoted model, the metrics and the reports of this workspace are (ends `make run`)."""
    from saviorrec.config import load_params, parse_set
    from saviorrec.workspace import Workspace

    registry = open_from_cli(params, set_)
    root = Path(params).resolve().parent
    ws = Workspace(root, load_params(params, overrides=parse_set(set_ or [])))
    pointer = guarded(registry.production) or {}

    def rel(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    lines = ["", "saviorrec pipeline outputs"]
    if pointer:
        lines.append(f"  production model : {registry.name} {pointer['version']} "
                     f"(previous: {pointer.get('previous') or '-'}) in {registry.store.describe(registry.prefix)}")
        lines.append("                     saviorrec registry show production | saviorrec score --events FILE --out FILE")
    else:
        lines.append(f"  production model : none yet in {registry.store.describe(registry.prefix)}")
    metrics = sorted(ws.path("metrics").glob("*.json")) if ws.path("metrics").is_dir() else []
    lines.append(f"  metrics          : {', '.join(rel(m) for m in metrics) or '-'}  (dvc metrics show)")
    plots = sorted(ws.path("plots").glob("*")) if ws.path("plots").is_dir() else []
    lines.append(f"  plots            : {', '.join(rel(p) for p in plots) or '-'}  (dvc plots show)")
    gates = sorted(ws.path("gates").glob("*.json")) if ws.path("gates").is_dir() else []
    lines.append(f"  gate verdicts    : {', '.join(rel(g) for g in gates) or '-'}")
    docs = ws.path("data_docs")
    index = next(iter(sorted(docs.rglob("index.html"))), None) if docs.is_dir() else None
    lines.append(f"  data docs        : {rel(index) if index else '-'}")
    receipt = ws.path("reports") / "promotion.json"
    lines.append(f"  promotion receipt: {rel(receipt) if receipt.is_file() else '-'}")
    typer.echo("\n".join(lines))
