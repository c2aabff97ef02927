"""`saviorrec registry ...`: list, inspect, promote and roll back model versions.

    saviorrec registry list                  # per version: setting, window, AUCs, gates, who promoted it
    saviorrec registry show v3 [--json]      # a readable summary; --json: everything
    saviorrec registry promote v3 [--force]  # refuses failed gates / another setting without --force
    saviorrec registry rollback
    saviorrec registry gc [--older-than 1h] [--yes]   # incomplete versions left by dead uploads
    saviorrec registry list --set registry.uri=s3://my-bucket/saviorrec   # S3 instead of registry/
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from pathlib import Path

import typer

registry_app = typer.Typer(help="The model registry (registry.uri: a local folder or s3://BUCKET/PREFIX).",
                           no_args_is_help=True)

def checkout_params(path: str | None) -> str:
    """--params as given, else the base params.yaml of the checkout in use (from any sub-folder)."""
    from saviorrec.config.repository import repository_root

    return path or str(repository_root() / "params.yaml")


ParamsOption = typer.Option(None, "--params", callback=checkout_params,
                            help="params file; default: params.yaml of the checkout in use")
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


def fail(err: Exception, code: int = 1) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code)


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


LIST_COLUMNS = ("version", "preset", "source", "world", "eval window", "AUC", "new AUC", "logs", "sids", "model",
                "promoted by")


def _auc(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _verdict(passed) -> str:
    return {True: "pass", False: "FAIL"}.get(passed, "-")


def _window(evaluation: dict) -> str:
    start, end = evaluation.get("train_end"), evaluation.get("eval_end")
    return f"[{start}, {end})" if start and end else "-"


def list_row(row: dict) -> list[str]:
    """The cells of one `registry list` row (LIST_COLUMNS)."""
    if not row["complete"]:
        return [row["version"], "(incomplete upload: no manifest; `saviorrec registry gc`)"]
    setting, evaluation, gates = row["setting"], row["evaluation"], row["gates"]
    world = setting["fingerprint"] + ("" if row["setting_recorded"] else "~")
    return [row["version"], setting["preset"], setting["data_source"], world, _window(evaluation),
            _auc(evaluation.get("auc")), _auc(evaluation.get("new_auc")),
            *(_verdict(gates.get(g)) for g in ("validate_logs", "validate_sids", "validate_model")),
            row["promoted_by"] or "-"]


@registry_app.command("list")
def list_versions(params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Every version, oldest first: preset, data source, world, evaluation window, AUCs, gate verdicts
    and who promoted it; `*` marks production, `~` a setting derived from an older version's params."""
    registry = open_from_cli(params, set_)
    rows = guarded(registry.list)
    typer.echo(f"{registry.name} @ {registry.store.describe(registry.prefix)}")
    if not rows:
        typer.echo("  (no versions yet: `make run` or `python -m pipelines.promote` publishes one)")
        return
    table = [list(LIST_COLUMNS)] + [list_row(row) for row in rows]
    full = [cells for cells in table if len(cells) == len(LIST_COLUMNS)]
    widths = [max(len(cells[i]) for cells in full) for i in range(len(LIST_COLUMNS))]
    marks = [" "] + ["*" if row["production"] else " " for row in rows]
    for mark, cells in zip(marks, table, strict=True):
        typer.echo(f"{mark} " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                   if len(cells) == len(LIST_COLUMNS) else f"{mark} {cells[0].ljust(widths[0])}  {cells[1]}")
    if any(row["complete"] and not row["setting_recorded"] for row in rows):
        typer.echo("~ published before settings were recorded: setting derived from the version's params.yaml")


def summary_lines(shown: dict) -> list[str]:
    """`registry show`: about a dozen lines a person reads (``--json`` has everything)."""
    setting, evaluation, gates = shown["setting"], shown["evaluation"], shown["gates"]
    lineage = shown.get("lineage") or {}
    git = lineage.get("git") or {}
    world = ", ".join(f"{k}={v}" for k, v in setting["world"].items())
    data = ", ".join(f"{path} {md5[:8]}" for path, md5 in (lineage.get("data") or {}).items() if md5) or "-"
    commit = (git.get("commit") or "-")[:10] + (" (dirty)" if git.get("dirty") else "")
    origin = "recorded at publish time" if shown["setting_recorded"] else "derived from its params.yaml (older version)"
    return [
        f"{shown['version']} of {shown['uri']}" + ("  [production]" if shown["production"] else ""),
        f"  published     {shown['created_at']} by {shown.get('published_by') or 'not recorded'}",
        f"  promoted by   {shown.get('promoted_by') or 'never promoted'}",
        f"  setting       preset {setting['preset']}, source {setting['data_source']}, "
        f"world {setting['fingerprint']} ({origin})",
        *textwrap.wrap(world, width=110, initial_indent="  world         ", subsequent_indent=" " * 16),
        f"  eval window   {_window(evaluation)}",
        f"  CTR AUC       {_auc(evaluation.get('auc'))} overall, {_auc(evaluation.get('new_auc'))} on new items",
        "  gates         " + ", ".join(f"{g} {_verdict(gates.get(g))}"
                                       for g in ("validate_logs", "validate_sids", "validate_model")),
        f"  git commit    {commit}",
        f"  data (md5)    {data}",
        f"  files         {shown['files']} ({shown['bytes'] / 1e6:.1f} MB); metrics: "
        + (", ".join(sorted(shown.get("metrics") or {})) or "-"),
        *([f"  notes         {shown['notes']}"] if shown.get("notes") else []),
        f"  everything:   saviorrec registry show {shown['version']} --json",
    ]


@registry_app.command("show")
def show(version: str = typer.Argument(..., help="vN, `production` or `latest`"),
         as_json: bool = typer.Option(False, "--json", help="the whole manifest summary, lineage and metrics as JSON"),
         params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """A version's setting, evaluation window, AUCs, gates, lineage and promotion, in a dozen lines."""
    registry = open_from_cli(params, set_)
    shown = guarded(lambda: registry.show(registry.resolve(version)))
    if as_json:
        echo_json(shown)
    else:
        typer.echo("\n".join(summary_lines(shown)))


@registry_app.command("promote")
def promote(version: str = typer.Argument(..., help="vN or `latest`"),
            force: bool = typer.Option(False, "--force",
                                       help="promote even when its gates did not all pass or it was trained on "
                                            "another setting than production (recorded in the history)"),
            params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Verify every file of VERSION, then move the production pointer to it.

    Refuses (exit 2) a version whose gates did not all pass, or trained on another setting (data
    source, preset, world) than the production model, unless --force.
    """
    from saviorrec.storage.promotion import PromotionRefused, promote_version

    registry = open_from_cli(params, set_)
    root = Path(params).resolve().parent
    target = guarded(lambda: registry.resolve(version))
    before = guarded(registry.production) or {}

    def attempt():
        try:
            return promote_version(registry, target, force=force, root=root)
        except PromotionRefused as err:  # a refusal, not a failure: exit 2, one line
            fail(err, code=2)

    pointer = guarded(attempt)
    if before.get("version") == target:
        typer.echo(f"{registry.name} {target} is production already")
        return
    typer.echo(f"production {registry.name}: {pointer['previous'] or '-'} -> {target} "
               f"(promoted by {pointer['promoted_by']})")
    if pointer["overrode"]:
        typer.echo(f"forced: overrode {'; '.join(pointer['overrode'])} (recorded in production.json promotions)")


@registry_app.command("rollback")
def rollback(params: str = ParamsOption, set_: list[str] | None = SetOption) -> None:
    """Point production back at the previously promoted version."""
    from saviorrec.storage.promotion import cli_actor

    registry = open_from_cli(params, set_)
    echo_json(guarded(lambda: registry.rollback(by=cli_actor())))


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
    try:
        last = json.loads(receipt.read_text()) if receipt.is_file() else {}
    except json.JSONDecodeError:
        last = {}
    if last.get("not_promoted_because"):
        lines.append(f"  this run's model : {registry.name} {last['version']} published, not production "
                     f"({last['not_promoted_because']})")
        lines.append(f"                     to promote it: {last['to_promote']}  (or -S registry.promote=always)")
    typer.echo("\n".join(lines))
