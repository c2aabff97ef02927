"""The `saviorrec` command: pipeline stages, the model registry, scoring and SID assignment.

    saviorrec --help
    saviorrec ingest --set preset=tiny
    saviorrec train-ranker --workdir runs/2024-01-30
"""

from __future__ import annotations

import typer

from saviorrec.stages import STAGES, stage_module

app = typer.Typer(
    help="SaviorRec cold-start CTR pipeline. Stages run exactly as `dvc repro` and Airflow run them.",
    no_args_is_help=True,
    add_completion=False,
)


def _stage_command(stage: str):
    def command(ctx: typer.Context) -> None:
        stage_module(stage).main(list(ctx.args))

    command.__doc__ = STAGES[stage] + " Flags: --params, --workdir, --set KEY=VALUE."
    return command


for _stage in STAGES:
    app.command(
        name=_stage.replace("_", "-"),
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        rich_help_panel="Pipeline stages",
    )(_stage_command(_stage))


# ---- the model registry and using the promoted model (storage) ------------------------------

from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

from saviorrec.storage.cli import ParamsOption, SetOption, fail, open_from_cli, registry_app  # noqa: E402

app.add_typer(registry_app, name="registry", rich_help_panel="Model registry")

ModelOption = typer.Option("production", "--model", help="production, latest or a version vN")
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="the folder image_refs of --items are relative to (default: the items file's folder)")]


def _model_workspace(model: str, params: str, sets):
    from saviorrec.storage.cli import guarded

    registry = open_from_cli(params, sets)
    return guarded(lambda: registry.workspace(registry.resolve(model)))


def bad_input(err: Exception) -> None:
    """A file the user gave cannot be used: one line, exit code 2 (a usage error, as for a bad flag)."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


def _new_items(items_file: Path, data_dir: Path | None):
    """A catalog file in the data contract, each image_ref made absolute (under --data-dir)."""
    from saviorrec.cli_inputs import read_items_input, resolve_image_refs

    return resolve_image_refs(read_items_input(items_file), items_file, data_dir)


@app.command(rich_help_panel="Using the promoted model")
def score(
    events: Annotated[Path, typer.Option("--events", help="impressions: a data-contract Parquet file, one "
                                         "ds=YYYY-MM-DD folder or a folder of them")],
    out: Annotated[Path, typer.Option("--out", help="output .parquet, .csv or .json: event_id, p_ctr, p_ctcvr")],
    model: str = ModelOption,
    history: Annotated[Path | None, typer.Option("--history", help="earlier events (file or ds=... folder) that "
                                                 "build user sequences; default: the impressions' own past")] = None,
    items: Annotated[Path | None, typer.Option("--items", help="catalog file with items the model has not seen")] = None,
    data_dir: DataDir = None,
    params: str = ParamsOption,
    set_: list[str] | None = SetOption,
) -> None:
    """pCTR and pCTCVR for impressions, with the production (or given) model from the registry."""
    import pandas as pd

    from saviorrec.cli_inputs import (
        BadInput,
        check_events,
        check_known_items,
        output_format,
        read_events_input,
        write_table,
    )
    from saviorrec.data import io

    try:  # the user's files first: a mistake there is reported before the model loads
        output_format(out)
        frame = check_events(events, read_events_input(events))
        past = check_events(history, read_events_input(history)) if history is not None else None
        extra = _new_items(items, data_dir) if items is not None else None
    except BadInput as err:
        bad_input(err)
    model_ws = _model_workspace(model, params, set_)
    catalog = io.read_items(model_ws.path("items"))
    if extra is not None:
        catalog = pd.concat([catalog[~catalog["item_id"].isin(extra["item_id"])], extra], ignore_index=True)
    try:
        check_known_items(events, frame, catalog)
        if past is not None:
            check_known_items(history, past, catalog)
    except BadInput as err:
        bad_input(err)
    from saviorrec.models.scoring import score_events  # torch: loaded once the inputs are known good

    scores = score_events(model_ws, frame, past, catalog)
    try:
        write_table(scores, out)
    except BadInput as err:
        bad_input(err)
    typer.echo(f"scored {len(scores):,} impressions with {model} ({model_ws.root.name}) -> {out}")


@app.command(rich_help_panel="Using the promoted model")
def sid(
    items: Annotated[Path, typer.Option("--items", help="catalog file (data contract) of new items")],
    out: Annotated[Path, typer.Option("--out", help="output .parquet, .csv or .json: item_id, sid, c1..cL, dedup, vector")],
    model: str = ModelOption,
    space: Annotated[str, typer.Option("--space", help="behavior (z from the encoder) or generic (plain MiniLM)")] = "behavior",
    data_dir: DataDir = None,
    params: str = ParamsOption,
    set_: list[str] | None = SetOption,
) -> None:
    """z and semantic IDs for new catalog items with the promoted encoder and codebook (no retraining).

    Every image_ref must name a picture under --data-dir: an item encoded without its picture
    would get another SID than with it, so a missing picture is an error, not a silent fallback.
    """
    from saviorrec.cli_inputs import BadInput, output_format, write_table

    try:
        fmt = output_format(out)
        new_items = _new_items(items, data_dir)
    except BadInput as err:
        bad_input(err)
    from saviorrec.models.semantic_ids import embed_and_assign
    model_ws = _model_workspace(model, params, set_)
    try:
        embeddings, sids = embed_and_assign(model_ws, new_items, space=space)
    except ValueError as err:
        fail(err)
    table = sids.merge(embeddings, on="item_id", how="left")
    if fmt == ".csv":
        table["vector"] = table["vector"].map(lambda v: " ".join(f"{x:.6g}" for x in v))
    elif fmt == ".json":
        table["vector"] = table["vector"].map(lambda v: [float(x) for x in v])
    try:
        write_table(table, out)
    except BadInput as err:
        bad_input(err)
    typer.echo(f"assigned semantic IDs to {len(table):,} items with {model} ({model_ws.root.name}) -> {out}")


# ---- the rolling backtest ------------------------------------------------------------------

@app.command(rich_help_panel="Backtest")
def backtest(
    root: Annotated[str | None, typer.Option("--root", help="backtest folder (default: backtest.root); rerun the "
                                             "same command to continue a killed backtest")] = None,
    days: Annotated[int | None, typer.Option("--days", help="steps to replay (days, or months with --step month)")] = None,
    step: Annotated[str | None, typer.Option("--step", help="day (synthetic) or month (MovieLens)")] = None,
    start: Annotated[str | None, typer.Option("--start", help="first evaluated day/month, YYYY-MM-DD")] = None,
    variants: Annotated[str | None, typer.Option("--variants", help="comma-separated ranker variants, "
                                                 "e.g. saviorrec,id_only")] = None,
    encoder_every: Annotated[int | None, typer.Option("--encoder-every", help="encoder refresh every N steps; "
                                                      "0: never after the first")] = None,
    gates: Annotated[bool | None, typer.Option("--gates/--no-gates", help="also run validate_logs each step")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="params preset, e.g. tiny, drift, movielens")] = None,
    params: str = ParamsOption,
    set_: list[str] | None = SetOption,
) -> None:
    """Replay N consecutive daily refreshes offline (the DAG's stages and encoder cadence): AUC per step
    and variant, SID churn, z drift, seconds per stage -> <root>/metrics/backtest.{csv,json}, plots/backtest_auc.png."""
    import datetime as dt

    from saviorrec.backtest import BacktestError, run_backtest
    from saviorrec.cli_inputs import BadInput
    from saviorrec.config import ParamsError, parse_set
    from saviorrec.models.variants import VARIANT_NAMES
    from saviorrec.workspace import StageError

    overrides: dict = {}
    try:
        if preset is not None:
            overrides["preset"] = preset
        overrides |= parse_set(set_ or [])
        if step is not None and step not in ("day", "month"):
            raise BadInput("--step", f"unknown step {step!r}", "day or month")
        if start is not None:
            try:
                dt.date.fromisoformat(start)
            except ValueError:
                raise BadInput("--start", f"not a date: {start!r}", "YYYY-MM-DD") from None
        if variants is not None:
            names = [v.strip() for v in variants.split(",") if v.strip()]
            unknown = [v for v in names if v not in VARIANT_NAMES]
            if unknown or not names:
                raise BadInput("--variants", f"unknown variant(s) {', '.join(unknown) or '(none given)'}",
                               f"a comma-separated list of {', '.join(VARIANT_NAMES)}")
            overrides["backtest.variants"] = names
        if days is not None and days < 1:
            raise BadInput("--days", f"{days} steps", "1 or more")
        if encoder_every is not None and encoder_every < 0:
            raise BadInput("--encoder-every", f"{encoder_every}", "0 (never refresh again) or more")
    except BadInput as err:
        bad_input(err)
    except ParamsError as err:
        fail(err, 2)
    flags = {"backtest.root": root, "backtest.days": days, "backtest.step": step, "backtest.start": start,
             "backtest.encoder_every": encoder_every, "backtest.gates": gates}
    overrides |= {key: value for key, value in flags.items() if value is not None}
    try:
        run_backtest(params, overrides, echo=typer.echo)
    except (BacktestError, ParamsError, StageError, FileNotFoundError, ValueError) as err:
        fail(err)


if __name__ == "__main__":
    app()
