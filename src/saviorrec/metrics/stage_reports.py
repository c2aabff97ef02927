"""Each measuring stage writes two files: ``metrics/<name>.json``, the few numbers worth comparing
across runs (what ``dvc metrics show`` / ``dvc exp show`` print as columns), and
``reports/details/<name>.json``, the whole report (every slice, pair set and level, undefined-AUC
reasons, and the run's settings: epochs, lr, window, variant...), for people and benchmarks.

A metrics file holds metrics only: a setting echoed there shows up as a "metric" that changes
whenever a parameter does, and a wide report makes the DVC tables unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from saviorrec.atomic_files import write_json

DETAILS_DIR = "details"  # under paths.reports

# The headline numbers per report: flat metric name -> dotted path into the full report. Flat,
# short names shared between reports (the candidate and the baseline both have ``ctr_auc``)
# keep ``dvc metrics show`` narrow: it prints one column per distinct name. A path missing from
# the report (the oracle AUC off synthetic data) is left out; a null value is kept (undefined AUC).
HEADLINES: dict[str, dict[str, str]] = {
    "encoder": {"hit_at_{hit_k}": "hit_at_{hit_k}", "hit_at_{hit_k}_minilm": "hit_at_{hit_k}_minilm",
                "cold_hit_at_{hit_k}": "retrieval.cold.hit", "train_loss": "train_loss"},
    "codebook": {"raw_collision_rate": "raw_collision_rate", "unique_fraction": "unique_fraction",
                 "level1_utilization": "level1_utilization", "reconstruction_mse_relative": "reconstruction_mse_relative",
                 "churn": "churn", "hit_at_{hit_k}_reconstructed": "hit_at_{hit_k}_reconstructed"},
    "ranker": {"ctr_auc": "overall.ctr_auc", "ctr_gauc": "overall.ctr_gauc", "ctr_logloss": "overall.ctr_logloss",
               "ctcvr_auc": "overall.ctcvr_auc", "calibration": "overall.calibration",
               "oracle_ctr_auc": "overall.ctr_oracle_auc",
               **{f"{b}_ctr_auc": f"buckets.{b}.ctr_auc" for b in ("new", "young", "long_tail", "popular")}},
    # the baseline is there to be beaten on new items: its overall, new-item AUC and calibration suffice
    "baseline": {"ctr_auc": "overall.ctr_auc", "calibration": "overall.calibration", "new_ctr_auc": "buckets.new.ctr_auc"},
}


def details_file(reports_dir: str | Path, name: str) -> Path:
    return Path(reports_dir) / DETAILS_DIR / f"{name}.json"


def _lookup(report: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def headline(report: Mapping[str, Any], paths: Mapping[str, str]) -> dict[str, Any]:
    """``name -> value`` for each ``name -> dotted path`` of ``report`` that holds a number or null."""
    out: dict[str, Any] = {}
    for name, dotted in paths.items():
        found, value = _lookup(report, dotted)
        if found and not isinstance(value, (str, bool, list, dict)):
            out[name] = value
    return out


def write_stage_report(metrics_file: str | Path, reports_dir: str | Path, name: str, report: Mapping[str, Any],
                       **fill: Any) -> dict[str, Any]:
    """Write ``report`` whole to ``reports/details/<name>.json`` and its headline numbers
    (``HEADLINES[name]``, ``{...}`` filled from ``fill``) to ``metrics_file``; the headline."""
    paths = {k.format(**fill): v.format(**fill) for k, v in HEADLINES[name].items()}
    numbers = headline(report, paths)
    write_json(details_file(reports_dir, name), dict(report))
    write_json(metrics_file, numbers)
    return numbers
