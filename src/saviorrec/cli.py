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
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="where image_refs of --items resolve (default: its folder)")]


def _model_workspace(model: str, params: str, sets):
    from saviorrec.storage.cli import guarded

    registry = open_from_cli(params, sets)
    return guarded(lambda: registry.workspace(registry.resolve(model)))


def _read_table(path: Path):
    from saviorrec.data import io

    if path.is_dir():
        return io.read_events(path)
    if not path.is_file():
        fail(FileNotFoundError(f"not found: {path}"))
    return io.read_parquet(path)


def _write_table(df, out: Path) -> None:
    from saviorrec.data import io

    if out.suffix == ".csv":
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    else:
        io.write_parquet(df, out)


def _new_items(items_file: Path, data_dir: Path | None):
    """A catalog file in the data contract; image_ref made absolute (relative to --data-dir)."""
    from saviorrec.data import io
    from saviorrec.data.contract import validate_items

    if not items_file.is_file():
        fail(FileNotFoundError(f"items file not found: {items_file}"))
    items = validate_items(io.read_items(items_file))
    if "image_ref" in items:
        base = (data_dir or items_file.parent).resolve()
        items["image_ref"] = items["image_ref"].map(lambda ref: None if ref is None or ref != ref else str(base / ref))
    return items


@app.command(rich_help_panel="Using the promoted model")
def score(
    events: Annotated[Path, typer.Option("--events", help="impressions (data-contract Parquet file or ds=... folder)")],
    out: Annotated[Path, typer.Option("--out", help="output .parquet (or .csv): event_id, p_ctr, p_ctcvr")],
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

    from saviorrec.data import io
    from saviorrec.data.contract import ContractError, validate_events
    from saviorrec.models.scoring import score_events

    model_ws = _model_workspace(model, params, set_)
    catalog = io.read_items(model_ws.path("items"))
    if items is not None:
        extra = _new_items(items, data_dir)
        catalog = pd.concat([catalog[~catalog["item_id"].isin(extra["item_id"])], extra], ignore_index=True)
    try:
        frame = validate_events(_read_table(events), catalog)
        past = validate_events(_read_table(history), catalog) if history is not None else None
    except ContractError as err:
        fail(err)
    scores = score_events(model_ws, frame, past, catalog)
    _write_table(scores, out)
    typer.echo(f"scored {len(scores):,} impressions with {model} ({model_ws.root.name}) -> {out}")


@app.command(rich_help_panel="Using the promoted model")
def sid(
    items: Annotated[Path, typer.Option("--items", help="catalog file (data contract) of new items")],
    out: Annotated[Path, typer.Option("--out", help="output .parquet (or .csv): item_id, sid, c1..cL, dedup, vector")],
    model: str = ModelOption,
    space: Annotated[str, typer.Option("--space", help="behavior (z from the encoder) or generic (plain MiniLM)")] = "behavior",
    data_dir: DataDir = None,
    params: str = ParamsOption,
    set_: list[str] | None = SetOption,
) -> None:
    """z and semantic IDs for new catalog items with the promoted encoder and codebook (no retraining)."""
    from saviorrec.models.semantic_ids import embed_and_assign

    model_ws = _model_workspace(model, params, set_)
    try:
        embeddings, sids = embed_and_assign(model_ws, _new_items(items, data_dir), space=space)
    except ValueError as err:
        fail(err)
    table = sids.merge(embeddings, on="item_id", how="left")
    if out.suffix == ".csv":
        table["vector"] = table["vector"].map(lambda v: " ".join(f"{x:.6g}" for x in v))
    _write_table(table, out)
    typer.echo(f"assigned semantic IDs to {len(table):,} items with {model} ({model_ws.root.name}) -> {out}")


if __name__ == "__main__":
    app()
