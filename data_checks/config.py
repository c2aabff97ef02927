"""The shape of params.yaml `checks:`: every threshold with its severity, validated here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saviorrec.config.errors import describe_validation_error

Severity = Literal["critical", "warning"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flag(_Strict):
    """A check without a threshold: only its severity is configurable."""

    severity: Severity


class Threshold(Flag):
    value: float


class Band(Flag):
    """Today's value must lie strictly inside [trailing / ratio, trailing * ratio]."""

    ratio: float = Field(gt=1.0)
    trailing_days: int = Field(ge=1)
    min_impressions: int = Field(default=0, ge=0)  # days smaller than this are too noisy to judge


class RelativeBand(Flag):
    """|value / reference - 1| <= ratio."""

    ratio: float = Field(gt=0.0)


class RowScope(_Strict):
    last_days: int | None = Field(default=None, ge=1)  # None: row-level checks on every day
    # rows per Great Expectations batch: consecutive days are grouped up to this many rows, validated,
    # and dropped before the next batch is read (a bigger day is a batch of its own)
    batch_rows: int = Field(default=1_000_000, ge=1)


class LogChecks(_Strict):
    ctr_band: Band
    volume_band: Band
    bot_max_impressions_per_user_day: Threshold
    row_checks: RowScope = RowScope()


class ItemChecks(_Strict):
    first_seen_not_future: Flag
    image_refs_resolve: Flag


class SidChecks(_Strict):
    max_raw_collision_rate: Threshold
    min_level1_utilization: Threshold
    min_level_utilization: Threshold
    max_churn: Threshold


class ModelChecks(_Strict):
    auc_tolerance: Threshold
    new_auc_tolerance: Threshold
    baseline_new_auc_tolerance: Threshold  # new-item AUC vs the `baseline:` ranker's on the same events
    calibration_band: RelativeBand
    # production trained on the candidate's data source, preset and world (older params lack the key)
    same_setting: Flag = Flag(severity="critical")


class Checks(_Strict):
    logs: LogChecks
    items: ItemChecks
    sids: SidChecks
    model: ModelChecks


def load_checks(params: Any) -> Checks:
    """``params.checks`` (a plain dict in Params) as a typed, validated object."""
    raw = params.checks if not isinstance(params, dict) else params
    try:
        return Checks.model_validate(raw)
    except ValidationError as err:
        problems = describe_validation_error(err, prefix="checks.")
        raise ValueError(f"invalid params: {problems}") from None
