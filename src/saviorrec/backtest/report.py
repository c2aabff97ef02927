"""The backtest's outputs: ``metrics/backtest.{csv,json}``, ``plots/backtest_auc.png`` and a summary.

The summary gives, per variant, the mean +- std over steps of each AUC and stability measure,
the AUCs over all steps' impressions pooled (:mod:`saviorrec.backtest.pooled`: what a sparse
monthly log is judged by), how many steps each variant had the best new-item AUC, and the seconds
each stage took.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from saviorrec.atomic_files import atomic_path, write_json
from saviorrec.backtest.pooled import pooled_metrics

SUMMARY_METRICS = ("auc", "new_auc", "young_auc", "popular_auc", "oracle_auc", "new_oracle_auc",
                   "sid_churn", "collision_rate", "z_drift")


STAGE_ORDER = ("ingest (world)", "view", "validate_logs", "cadence", "train_encoder", "build_codebook",
               "reuse_encoder", "validate_sids", "train_ranker", "evaluate")


def _stage_rank(name: str) -> tuple[int, str]:
    stage = name.split("[")[0]
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), name)


def summarize(table: pd.DataFrame) -> dict:
    summary: dict = {"steps": int(table["step"].nunique()), "variants": {}, "new_auc_wins": {}, "seconds": {}}
    for variant, rows in table.groupby("variant", sort=False):
        stats = {}
        for metric in SUMMARY_METRICS:
            values = pd.to_numeric(rows[metric], errors="coerce").dropna() if metric in rows else pd.Series(dtype=float)
            stats[metric] = {"mean": float(values.mean()) if len(values) else None,
                             "std": float(values.std(ddof=0)) if len(values) else None, "steps": int(len(values))}
        summary["variants"][variant] = stats
    scored = table.dropna(subset=["new_auc"])
    best = scored.loc[scored.groupby("step")["new_auc"].idxmax(), "variant"] if len(scored) else pd.Series(dtype=str)
    summary["new_auc_wins"] = {variant: int((best == variant).sum()) for variant in table["variant"].unique()}
    seconds = [c for c in table.columns if c.startswith("seconds_")]
    shared = {"view", "validate_logs", "cadence", "train_encoder", "build_codebook", "reuse_encoder", "validate_sids"}
    for column in seconds:
        stage = column.removeprefix("seconds_")
        if stage in shared:  # once per step, repeated on each variant's row
            values = table.drop_duplicates("step")[column].dropna()
            summary["seconds"][stage] = {"total": round(float(values.sum()), 2), "mean": round(float(values.mean()), 2),
                                         "steps": int(len(values))}
        else:
            for variant, rows in table.groupby("variant", sort=False):
                values = rows[column].dropna()
                summary["seconds"][f"{stage}[{variant}]"] = {"total": round(float(values.sum()), 2),
                                                             "mean": round(float(values.mean()), 2),
                                                             "steps": int(len(values))}
    summary["seconds_total"] = round(sum(v["total"] for v in summary["seconds"].values()), 2)
    return summary


POOLED_SLICES = ("overall", "new", "young", "popular")


def pooled_summary(pooled: dict[str, dict]) -> dict[str, dict]:
    """variant -> slice -> pooled AUC, within-step AUC, oracle AUC, n, positives."""
    out = {}
    for variant, report in pooled.items():
        slices = {"overall": report["overall"], **report["buckets"]}
        out[variant] = {name: {key: slices[name].get(key)
                               for key in ("ctr_auc", "within_step_auc", "ctr_oracle_auc", "n", "positives")}
                        for name in POOLED_SLICES}
    return out


def plot(table: pd.DataFrame, path: Path) -> None:
    """New-item AUC per step per variant (solid), overall AUC dashed in the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for variant, rows in table.groupby("variant", sort=False):
        rows = rows.sort_values("step")
        line, = ax.plot(rows["key"], pd.to_numeric(rows["new_auc"], errors="coerce"), marker="o", label=f"{variant} new")
        ax.plot(rows["key"], pd.to_numeric(rows["auc"], errors="coerce"), linestyle="--", color=line.get_color(),
                label=f"{variant} overall")
    refreshed = table.drop_duplicates("step")
    for key in refreshed.loc[refreshed["encoder_refreshed"].astype(bool), "key"]:
        ax.axvline(key, color="grey", alpha=0.2)  # encoder refresh steps
    ax.set_xlabel("evaluated step (grey: encoder refreshed)")
    ax.set_ylabel("CTR AUC")
    ax.set_title("Rolling backtest: new-item AUC (solid) and overall AUC (dashed)")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize="small", ncols=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _fmt(stats: dict) -> str:
    return "-" if stats["mean"] is None else f"{stats['mean']:.4f} +- {stats['std']:.4f}"


def summary_text(summary: dict) -> str:
    lines = [f"backtest summary over {summary['steps']} step(s): mean +- std over steps"]
    header = ["variant", *SUMMARY_METRICS]
    lines.append("  ".join(f"{h:>22}" if i else f"{h:<20}" for i, h in enumerate(header)))
    for variant, stats in summary["variants"].items():
        lines.append("  ".join([f"{variant:<20}", *(f"{_fmt(stats[m]):>22}" for m in SUMMARY_METRICS)]))
    if summary.get("pooled"):
        lines.append("AUC over all steps' impressions: pooled / same-step pairs only (impressions, positives):")
        for variant, slices in summary["pooled"].items():
            parts = [f"{name} {_auc(s['ctr_auc'])} / {_auc(s['within_step_auc'])} ({s['n']:,}, {s['positives']:,})"
                     for name, s in slices.items()]
            lines.append(f"  {variant:<20} " + "; ".join(parts))
    if summary.get("pooled_steps_missing"):
        lines.append(f"left out of the pooled AUCs (step files gone): {', '.join(summary['pooled_steps_missing'])}")
    wins = ", ".join(f"{v} {n}" for v, n in summary["new_auc_wins"].items())
    lines.append(f"steps with the best new-item AUC: {wins}")
    lines.append("seconds per stage (total / mean per step):")
    lines += [f"  {stage:<28} {v['total']:>9.1f} / {v['mean']:.1f}" for stage, v in summary["seconds"].items()]
    lines.append(f"  {'all stages':<28} {summary['seconds_total']:>9.1f}")
    return "\n".join(lines)


def write_report(root: Path, rows: list[dict], settings, echo: Callable[[str], None],
                 once: dict[str, float] | None = None) -> dict:
    """Write the table, the JSON (rows + summary) and the plot; print the summary. ``once``: seconds
    of work done once for the whole backtest (the synthetic world)."""
    table = pd.DataFrame(rows)
    summary = summarize(table)
    pooled, missing = pooled_metrics(root, rows)
    summary["pooled"], summary["pooled_steps_missing"] = pooled_summary(pooled), missing
    for stage, seconds in (once or {}).items():
        summary["seconds"][stage] = {"total": seconds, "mean": seconds, "steps": 1}
    summary["seconds"] = dict(sorted(summary["seconds"].items(), key=lambda item: _stage_rank(item[0])))
    summary["seconds_total"] = round(sum(v["total"] for v in summary["seconds"].values()), 2)
    metrics = root / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    with atomic_path(metrics / "backtest.csv") as tmp:
        table.to_csv(tmp, index=False)
    report = {"settings": {"days": settings.days, "step": settings.step, "start": settings.start.isoformat(),
                           "variants": list(settings.variants), "encoder_every": settings.encoder_every,
                           "gates": settings.gates},
              "rows": rows, "summary": summary}
    write_json(metrics / "backtest.json", report)
    plot(table, root / "plots" / "backtest_auc.png")
    echo(summary_text(summary))
    echo(f"table: {metrics / 'backtest.csv'}; plot: {root / 'plots' / 'backtest_auc.png'}")
    return report
