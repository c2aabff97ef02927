"""Which steps a backtest replays, and the params each step's workspace and each variant run with.

A step evaluates ``[eval_start, eval_end)`` and trains on everything before ``eval_start``:

- ``step: day`` (synthetic): one day. The step sees the ``synthetic.n_days`` days ending on it,
  as the DAG's run for that day does (``date_keyed_overrides``: the window ends on the evaluated
  day, ``split`` null so the last day is evaluated).
- ``step: month`` (MovieLens): one calendar month; everything before it trains, and
  ``movielens.until`` cuts the log at the month's end.

The encoder cadence counts steps (``backtest.encoder_every``): days for daily steps (default
``airflow.encoder_every_days``, as in the DAG), months for monthly ones (default 3: quarterly).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from saviorrec.config import Params
from saviorrec.orchestration.cadence import days_between, months_between

MONTHLY_ENCODER_EVERY = 3  # a quarter: the encoder sees three new months of behavior per refresh


class PlanError(ValueError):
    """The backtest settings cannot be replayed (one line saying which setting and why)."""


@dataclass(frozen=True)
class Step:
    index: int
    key: str               # the step's folder name: the evaluated day, or YYYY-MM
    eval_start: dt.date    # first evaluated day; training uses days before it
    eval_end: dt.date      # exclusive
    first_day: dt.date     # first event day the step's workspace holds


@dataclass(frozen=True)
class Settings:
    """params.backtest with its nulls resolved."""

    days: int
    step: str
    start: dt.date
    variants: tuple[str, ...]
    encoder_every: int
    gates: bool

    def age_of(self):
        return months_between if self.step == "month" else days_between

    @property
    def unit(self) -> str:
        return self.step


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def resolve_settings(params: Params) -> Settings:
    bt = params.backtest
    if bt.step == "day":
        if params.data.source != "synthetic":
            raise PlanError(f"backtest.step: day replays the synthetic source, not data.source={params.data.source}; "
                            "use --step month for MovieLens")
        start = bt.start or params.synthetic.start_date + dt.timedelta(days=params.synthetic.n_days - 1)
        earliest = params.synthetic.start_date + dt.timedelta(days=1)
        if start < earliest:
            raise PlanError(f"backtest.start: {start} leaves no training day before it; expected {earliest} or later")
        every = params.airflow.encoder_every_days if bt.encoder_every is None else bt.encoder_every
    else:
        if params.data.source != "movielens":
            raise PlanError(f"backtest.step: month replays the movielens source, not data.source={params.data.source}; "
                            "use --preset movielens")
        start = bt.start or params.split.train_end
        if start is None:
            raise PlanError("backtest.start: null and split.train_end: null; expected the first month to evaluate "
                            "(e.g. --start 2012-01-01)")
        start = start.replace(day=1)
        every = MONTHLY_ENCODER_EVERY if bt.encoder_every is None else bt.encoder_every
    return Settings(bt.days, bt.step, start, tuple(dict.fromkeys(bt.variants)), every, bt.gates)


def plan_steps(params: Params, settings: Settings) -> list[Step]:
    steps = []
    for index in range(settings.days):
        if settings.step == "day":
            day = settings.start + dt.timedelta(days=index)
            first = day - dt.timedelta(days=params.synthetic.n_days - 1)
            steps.append(Step(index, day.isoformat(), day, day + dt.timedelta(days=1),
                              max(first, params.synthetic.start_date)))
        else:
            month = _add_months(settings.start, index)
            steps.append(Step(index, month.strftime("%Y-%m"), month, _add_months(month, 1), dt.date.min))
    return steps


def world_overrides(params: Params, settings: Settings) -> dict:
    """The one synthetic world every daily step cuts its window from: long enough for the last step."""
    last = settings.start + dt.timedelta(days=settings.days - 1)
    return {"synthetic.n_days": (last - params.synthetic.start_date).days + 1, "split.train_end": None,
            "split.eval_end": None}


def step_overrides(params: Params, settings: Settings, step: Step, root: Path) -> dict:
    """The step's params, as the DAG's `prepare` writes them for that day (plus a warm ranker)."""
    shared = {
        "ranker.warm_start": True,  # continue from the variant's previous-step ranker (seeded by the replay)
        "paths.text_cache": str(root / ".cache" / "text_features"),  # text vectors never change: share them
        "registry.uri": str(root / "registry"),  # a backtest never reads or moves the real production model
        "airflow.runs_root": str(root / "steps"),
    }
    if settings.step == "day":
        window = (step.eval_start - step.first_day).days + 1
        return shared | {"synthetic.start_date": step.first_day.isoformat(), "synthetic.n_days": window,
                         "split.train_end": None, "split.eval_end": None}
    return shared | {"split.train_end": step.eval_start.isoformat(), "split.eval_end": step.eval_end.isoformat(),
                     "movielens.until": step.eval_end.isoformat()}


def variant_overrides(variant: str) -> dict:
    """A variant's own ranker, predictions, metrics, reports and plots inside the step's workspace."""
    base = f"variants/{variant}"
    return {"ranker.variant": variant, "paths.ranker": f"artifacts/{base}/ranker",
            "paths.ranker_seed": f"artifacts/{base}/warm_start",
            "paths.predictions": f"artifacts/{base}/predictions.parquet", "paths.metrics": f"metrics/{base}",
            "paths.reports": f"reports/{base}", "paths.plots": f"plots/{base}"}
