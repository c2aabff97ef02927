"""The schema of params.yaml. One pydantic model per section; unknown keys are errors."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from saviorrec.models.variants import VARIANT_NAMES


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Lightning Trainer settings of a training section (the defaults are one process, full precision).
# ddp: one process per device, each training on its own share of the data; Lightning starts them
# by re-running the stage command (see saviorrec.models.distributed).
TrainingStrategy = Literal["auto", "ddp", "ddp_find_unused_parameters_true"]
TrainingPrecision = Literal["32-true", "bf16-mixed", "16-mixed"]


class Paths(Section):
    data: str
    events: str
    items: str
    images: str
    text_features: str
    text_cache: str
    encoder: str
    # run folders and registry bundles written before the pairs became an output lack the key
    pairs: str = "artifacts/pairs.parquet"
    embeddings: str
    codebook: str
    sids: str
    sids_generic: str
    ranker: str
    predictions: str
    # run folders and registry bundles written before the baseline stage lack these keys
    baseline: str = "artifacts/baseline"
    baseline_predictions: str = "artifacts/baseline_predictions.parquet"
    # ... and before daily runs continued the last validated ranker
    ranker_seed: str = "artifacts/warm_start/ranker"
    baseline_seed: str = "artifacts/warm_start/baseline"
    metrics: str
    plots: str
    reports: str
    gates: str
    data_docs: str
    gx_project: str


class DataSource(Section):
    source: Literal["synthetic", "movielens", "parquet"]
    path: str


class Split(Section):
    train_end: dt.date | None = None
    eval_end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Split:
        if self.train_end and self.eval_end and self.eval_end <= self.train_end:
            raise ValueError(f"eval_end ({self.eval_end}) must be after train_end ({self.train_end})")
        return self


class Drift(Section):
    """A world that changes over weeks (saviorrec.data.synthetic.drift); every default is off."""
    taste_rate: float = Field(default=0.0, ge=0.0, le=1.0)        # per day: step of each user's topic taste toward a new one
    community_switch: float = Field(default=0.0, ge=0.0, le=1.0)  # per day: share of users who join another community
    trend_every_days: int = Field(default=0, ge=0)                # a new trend (topic or community) every K days; 0: none
    trend_item_share: float = Field(default=0.25, ge=0.0, le=1.0)  # share of each day's new items that belong to trends
    trend_adopt_share: float = Field(default=0.1, ge=0.0, le=1.0)  # share of users who adopt each trend
    trend_ramp_days: int = Field(default=7, ge=1)                 # adopters join over this many days from the start

    @property
    def enabled(self) -> bool:
        return self.taste_rate > 0 or self.community_switch > 0 or self.trend_every_days > 0


class Synthetic(Section):
    start_date: dt.date
    n_days: int = Field(ge=2)
    n_users: int = Field(ge=2)
    n_initial_items: int = Field(ge=2)
    new_items_per_day: int = Field(ge=1)
    impressions_per_day: int = Field(ge=1)
    n_topics: int = Field(ge=1)
    n_communities: int = Field(ge=1)
    n_categories: int = Field(ge=1)
    n_brands: int = Field(ge=1)
    image_size: int = Field(ge=4, le=64)
    images: bool
    partition_rows: int = Field(ge=1000)
    topic_weight: float = Field(default=1.6, ge=0.0)
    community_weight: float = Field(default=2.2, ge=0.0)
    fresh_share: float = Field(default=0.18, gt=0.0, lt=1.0)
    drift: Drift = Drift()  # off: the world is stationary


class MovieLens(Section):
    click_min_rating: float
    conversion_rating: float
    # Subsetting (saviorrec.data.movielens): null / full = the whole folder, as before.
    since: dt.date | None = None
    until: dt.date | None = None
    max_users: int | None = Field(default=None, ge=2)
    max_items: int | None = Field(default=None, ge=2)
    content: Literal["full", "title_genres"] = "full"

    @model_validator(mode="after")
    def _period(self) -> MovieLens:
        if self.since and self.until and self.until <= self.since:
            raise ValueError(f"until ({self.until}) must be after since ({self.since})")
        return self

    @property
    def subsets(self) -> bool:
        """True when any option drops ratings, tags, users or items."""
        return any(v is not None for v in (self.since, self.until, self.max_users, self.max_items))


class Pairs(Section):
    window_days: int = Field(ge=1)
    max_gap_events: int = Field(ge=1)
    min_support: int = Field(ge=1)
    cap_per_item: int = Field(ge=1)
    conversion_weight: float = Field(ge=1.0)
    popularity_alpha: float = Field(ge=0.0, le=1.0)
    holdout_fraction: float = Field(gt=0.0, lt=1.0)


class Encoder(Section):
    text_model: str
    text_batch_size: int = Field(ge=1)
    finetune_text_layers: int = Field(ge=0)
    image_backbone: str
    image_size: int = Field(ge=4, le=256)
    embedding_dim: int = Field(ge=2)
    hidden_dim: int = Field(ge=2)
    attribute_dim: int = Field(ge=1)
    temperature: float = Field(gt=0.0)
    batch_size: int = Field(ge=2)
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    pairs_per_epoch: int | None = Field(default=None, ge=1)
    dropout: float = Field(ge=0.0, lt=1.0)
    hit_k: int = Field(ge=1)
    hit_max_triggers: int | None = Field(default=None, ge=1)  # null (older folders): every trigger
    warm_start: bool
    warm_start_epochs: int = Field(ge=1)
    warm_start_lr: float = Field(gt=0.0)
    anchor_weight: float = Field(default=0.0, ge=0.0)
    pairs_per_item: float = Field(default=8.0, gt=0.0)
    content_residual: bool = True
    cold_item_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    correction_scales: list[Annotated[float, Field(ge=0.0)]] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0],
                                                                     min_length=1)
    patience: int | None = Field(default=3, ge=1)
    selection_margin: float = Field(default=1.0, ge=0.0)
    devices: int = Field(default=1, ge=1)
    strategy: TrainingStrategy = "auto"
    precision: TrainingPrecision = "32-true"


class Codebook(Section):
    levels: int = Field(ge=1, le=8)
    max_levels: int = Field(default=8, ge=1, le=8)
    depth_collision_target: float = Field(default=0.015, ge=0.0, le=1.0)
    codebook_size: int = Field(ge=2)
    latent_dim: int = Field(ge=2)
    hidden_dim: int = Field(ge=2)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=2)
    lr: float = Field(gt=0.0)
    commitment_weight: float = Field(ge=0.0)
    contrastive_weight: float = Field(ge=0.0)
    temperature: float = Field(gt=0.0)
    kmeans_iters: int = Field(ge=1)
    dead_code_threshold: int = Field(ge=0)
    full_rebuild: bool
    warm_start_epochs: int = Field(ge=0)
    warm_start_lr: float = Field(gt=0.0)
    sticky_margin: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _depth_range(self) -> Codebook:
        if self.max_levels < self.levels:
            raise ValueError(f"codebook.max_levels ({self.max_levels}) is below codebook.levels ({self.levels})")
        return self


# Literal of a tuple = Literal of its items; the names live with the variants' switches.
RankerVariant = Literal[VARIANT_NAMES]  # type: ignore[valid-type]


class Ranker(Section):
    variant: RankerVariant
    seq_len: int = Field(ge=1)
    id_dim: int = Field(ge=2)
    attn_dim: int = Field(ge=2)
    mba_hidden: int = Field(ge=2)
    dnn_hidden: list[int]
    dropout: float = Field(ge=0.0, lt=1.0)
    batch_size: int = Field(ge=2)
    min_steps_per_epoch: int | None = Field(default=None, ge=1)
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    warm_start: bool
    ctcvr_weight: float = Field(ge=0.0)
    accelerator: Literal["auto", "cpu", "gpu"]
    num_workers: int = Field(ge=0)
    heuristic_prior_strength: float = Field(gt=0.0)
    id_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    attention_pooling: Literal["softmax", "sigmoid"] = "softmax"
    wide_prior: bool = False
    interactions: bool = False
    sid_counters: bool = False
    content_clusters: int = Field(default=0, ge=0)
    text_clusters: int = Field(default=0, ge=0)
    sparse_ids: bool = False
    devices: int = Field(default=1, ge=1)
    strategy: TrainingStrategy = "auto"
    precision: TrainingPrecision = "32-true"


# Baselines that read no encoder or codebook output (dvc.yaml's `baseline` stage declares only
# the events, items and plain text features): the plain-content ranker, IDs only, the heuristic.
BaselineVariant = Literal["content_frozen", "id_only", "heuristic"]


class Baseline(Section):
    """The cheap ranker every run scores beside the candidate; validate_model compares new-item AUCs."""

    variant: BaselineVariant = "content_frozen"


class Evaluate(Section):
    young_days: int = Field(ge=1)
    # long_tail: the least-shown share of established items by training impressions (a fixed count
    # left the bucket empty on the default data, where every established item is shown 45+ times)
    long_tail_share: float = Field(default=0.2, gt=0, lt=1)
    long_tail_max_impressions: int | None = Field(default=None, ge=1)  # no longer read: superseded by long_tail_share
    min_positives: int = Field(ge=1)


def _promote_policy(value: Any) -> Any:
    """The booleans of older params keep their meaning: true -> always, false -> never."""
    if isinstance(value, bool):
        return "always" if value else "never"
    return {"true": "always", "false": "never"}.get(value.lower(), value) if isinstance(value, str) else value


# always: move production whenever every gate passes; never: publish only;
# first: move production only while the registry has none (a fresh `make run`).
PromotePolicy = Annotated[Literal["always", "never", "first"], BeforeValidator(_promote_policy)]


class Registry(Section):
    uri: str
    model_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    endpoint_url: str | None = None
    max_attempts: int = Field(ge=1)
    promote: PromotePolicy = "first"


class Airflow(Section):
    encoder_every_days: int = Field(ge=1)
    runs_root: str
    data_root: str
    start_date: dt.date
    catchup: bool
    max_active_runs: int = Field(ge=1)
    gpu_queue: str
    gpu_pool: str
    gpu_pool_slots: int = Field(ge=1)
    # Defaults keep run folders written before these keys loadable.
    schedule: bool = False  # the scheduler creates the daily runs (else manual runs and backfills only)
    ranker_warm_start: bool = False  # runs set ranker.warm_start and continue the last validated ranker
    scheduled_promote: PromotePolicy = "always"  # registry.promote of scheduled runs
    retries: int = Field(ge=0)
    retry_delay_minutes: float = Field(ge=0)
    execution_timeout_minutes: float = Field(gt=0)


class Backtest(Section):
    """The rolling backtest (`saviorrec backtest`, saviorrec.backtest): replay the daily refresh."""

    days: int = Field(default=14, ge=1)  # steps replayed (days, or months with step: month)
    step: Literal["day", "month"] = "day"  # day: synthetic world, one day a step; month: MovieLens months
    start: dt.date | None = None  # first evaluated day / month (null: day = the first full synthetic window,
                                  # month = split.train_end)
    variants: list[RankerVariant] = Field(default_factory=lambda: ["saviorrec"], min_length=1)
    encoder_every: int | None = Field(default=None, ge=0)  # steps; null: airflow.encoder_every_days (day) or 3
                                                           # (month); 0: never refresh after the first step
    gates: bool = False  # also run validate_logs per step (validate_sids always runs: reuse needs it)
    root: str = "runs/backtest"


class Params(Section):
    preset: str
    seed: int
    paths: Paths
    data: DataSource
    split: Split
    synthetic: Synthetic
    movielens: MovieLens
    pairs: Pairs
    encoder: Encoder
    codebook: Codebook
    ranker: Ranker
    baseline: Baseline = Baseline()  # absent from run folders and bundles older than the baseline stage
    evaluate: Evaluate
    # Gate thresholds are validated by data_checks (each check knows its own shape).
    checks: dict[str, dict[str, dict[str, Any]]]
    registry: Registry
    airflow: Airflow
    backtest: Backtest = Backtest()  # absent from run folders and bundles older than the backtest
