"""# saviorrec_daily

The daily refresh of the SaviorRec cold-start CTR model.

```
prepare -> ingest -> validate_logs -> encoder_cadence
encoder_cadence -> train_encoder -> build_codebook -> validate_sids     (refresh day)
encoder_cadence -> reuse_encoder -------------------> validate_sids     (other days)
validate_sids -> mark_validated -> train_ranker -> evaluate -> validate_model -> promote
                 mark_validated -> baseline -----> evaluate
```

- Each stage task calls `saviorrec.stages.run_stage` on the stage module `dvc repro` runs, in
  the run's own folder `<airflow.runs_root>/<logical date>` that `prepare` creates (params.yaml
  = the repository's params + this run's form); every task reads that folder from `prepare`'s XCom.
- The encoder and codebook are retrained every `airflow.encoder_every_days`; other runs reuse
  the last validated ones (`reuse_encoder`).
- `prepare` seeds the run with the ranker and baseline of the latest earlier run whose model
  gate passed (`airflow.ranker_warm_start`): they train on the days since, not the whole window.
- `baseline` trains and scores the plain-content ranker (`baseline.variant`) on the same window;
  `validate_model` refuses a candidate whose new-item AUC is below it by more than the tolerance.
- The gates (`validate_logs`, `validate_sids`, `validate_model`) log a verdict table and have a
  **Data Docs** link on the task instance. A failed gate fails its task without retries, so
  `promote` (trigger rule all_success) never runs.
- **Promotion**: a manual run moves production only with `promote` ticked in the form; a scheduled
  run follows `airflow.scheduled_promote` (default `always`).
- **Schedule**: off unless `airflow.schedule` / `SAVIORREC_AIRFLOW_SCHEDULE` turns it on, so
  "unpause on trigger" starts only the run you asked for (docs/airflow.md).
- Training tasks (baseline included) go to the `gpu` queue and pool; a retried one resumes from
  its last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from saviorrec.orchestration.form import RunForm, form_defaults, json_schema_fields, preset_choices
from saviorrec.orchestration.links import ROOT_TASK, DataDocsLink
from saviorrec.orchestration.workspace import load_base_params

BASE, _ = load_base_params()
AIRFLOW = BASE.airflow
CATCHUP = os.environ.get("SAVIORREC_AIRFLOW_CATCHUP", str(AIRFLOW.catchup)).lower() in ("1", "true", "yes")
GPU = {"queue": AIRFLOW.gpu_queue, "pool": AIRFLOW.gpu_pool}
GATES = ("validate_logs", "validate_sids", "validate_model")


def _form_params() -> dict[str, Param]:
    """The trigger form: RunForm's fields with their JSON-schema types, enums and ranges."""
    defaults = form_defaults(BASE).model_dump()
    schema = json_schema_fields()
    schema["preset"]["enum"] = preset_choices()  # the overlays next to the base params file
    params = {}
    for name, field in RunForm.model_fields.items():
        spec = dict(schema[name])
        description = spec.pop("description", field.description)
        params[name] = Param(defaults[name], description=description, title=name.replace("_", " "), **spec)
    return params


def _logical_date(context) -> dt.datetime:
    return context.get("logical_date") or context["dag_run"].run_after


def _data_day(context) -> dt.date:
    """The day the run evaluates: its data interval's start. A scheduled @daily run starts
    after that day ended; a manual run's interval is the last complete day before it."""
    start = context.get("data_interval_start") or getattr(context["dag_run"], "data_interval_start", None)
    if start is None:
        start = context["dag_run"].run_after - dt.timedelta(days=1)
    return start.date()


def _run_root() -> str:
    """The run folder `prepare` created, from its XCom: no data edge from prepare to every task."""
    return get_current_context()["ti"].xcom_pull(task_ids=ROOT_TASK)


def _stage(stage: str, **task_kwargs):
    """A task running one pipeline stage in the run folder that `prepare` returned; a gate
    task gets a Data Docs link."""

    @task(task_id=stage, **task_kwargs)
    def run() -> dict:
        from saviorrec.orchestration.tasks import RunFailure, run_task

        try_number = get_current_context()["ti"].try_number
        try:
            return run_task(stage, _run_root(), try_number=try_number)
        except RunFailure as err:  # a failed gate or bad input: retrying cannot help
            raise AirflowFailException(str(err)) from None

    node = run()
    if stage in GATES:
        node.operator.operator_extra_links = (DataDocsLink(),)
    return node


@dag(
    dag_id="saviorrec_daily",
    # Daily data intervals: the run for logical date D starts once D is over and evaluates D
    # (Airflow 3's plain "@daily" would be a trigger time, with an empty interval).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime.combine(AIRFLOW.start_date, dt.time(), tzinfo=dt.UTC),
    catchup=CATCHUP,
    max_active_runs=AIRFLOW.max_active_runs,
    params=_form_params(),
    default_args={
        "retries": AIRFLOW.retries,
        "retry_delay": dt.timedelta(minutes=AIRFLOW.retry_delay_minutes),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=max(AIRFLOW.retry_delay_minutes * 16, 1)),
        "execution_timeout": dt.timedelta(minutes=AIRFLOW.execution_timeout_minutes),
    },
    tags=["saviorrec", "mlops"],
    doc_md=__doc__,
)
def saviorrec_daily():
    @task(retries=0)
    def prepare() -> str:
        """Validate the form server-side, create this logical date's workspace and seed it with
        the last validated ranker (ranker.warm_start: the ranker trains on the new day only)."""
        from pathlib import Path

        from saviorrec.orchestration.form import FormError, promote_policy, validate_form
        from saviorrec.orchestration.ranker_warm_start import seed_run_rankers
        from saviorrec.orchestration.workspace import load_base_params, prepare_run_workspace
        from saviorrec.workspace import Workspace

        context = get_current_context()
        base, _ = load_base_params()
        run_type = str(getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type))
        try:
            form = validate_form(dict(context["params"]), base)
            promote = promote_policy(form, run_type, base)
            run = prepare_run_workspace(_logical_date(context), form, day=_data_day(context),
                                        run_id=context["run_id"], promote=promote)
        except (FormError, ValueError) as err:
            raise AirflowFailException(str(err)) from None
        print(f"run workspace: {run.root} (evaluates {run.data_day}); {run_type} run, registry.promote={promote}")
        ws = Workspace.open(run.root)
        print(seed_run_rankers(ws, Path(ws.params.airflow.runs_root))["reason"])
        return str(run.root)

    @task.branch
    def encoder_cadence() -> str:
        """Retrain encoder + codebook on their cadence, else reuse the last validated ones."""
        from pathlib import Path

        from saviorrec.orchestration.cadence import plan_cadence
        from saviorrec.orchestration.workspace import read_manifest
        from saviorrec.workspace import Workspace

        ws = Workspace.open(_run_root())
        decision = plan_cadence(ws, Path(ws.params.airflow.runs_root), every=ws.params.airflow.encoder_every_days,
                                skip_requested=read_manifest(ws.root)["form"]["skip_encoder_refresh"])
        print(decision.reason)
        return "train_encoder" if decision.refresh else "reuse_encoder"

    @task
    def reuse_encoder() -> list[str]:
        """Copy the validated encoder, codebook, embeddings and SIDs the cadence picked."""
        from saviorrec.orchestration.cadence import ReuseSourceGone, reuse_encoder
        from saviorrec.workspace import Workspace

        ws = Workspace.open(_run_root())
        try:
            copied, extended = reuse_encoder(ws)
        except ReuseSourceGone as err:
            raise AirflowFailException(str(err)) from None
        print(f"reused: {copied}; today's catalog: {extended}")
        return copied

    @task
    def mark_validated() -> None:
        """Record that this run's encoder/codebook passed validate_sids (later runs may reuse them)."""
        from saviorrec.orchestration.cadence import mark_validated

        mark_validated(_run_root())

    prepared = prepare()
    ingest = _stage("ingest")
    validate_logs = _stage("validate_logs")
    cadence = encoder_cadence()
    train_encoder = _stage("train_encoder", **GPU)
    build_codebook = _stage("build_codebook", **GPU)
    reused = reuse_encoder()
    # validate_sids checks whichever branch ran (fresh SIDs, or reused ones extended to
    # today's catalog); the trigger rule still blocks it after any upstream failure.
    validate_sids = _stage("validate_sids", trigger_rule="none_failed_min_one_success")
    validated = mark_validated()
    train_ranker = _stage("train_ranker", **GPU)
    evaluate = _stage("evaluate")
    baseline = _stage("baseline", **GPU)
    validate_model = _stage("validate_model")
    promote = _stage("promote")

    # The graph is the pipeline: every task reads the run folder from prepare's XCom, and
    # prepare is upstream of all of them through ingest.
    prepared >> ingest >> validate_logs >> cadence >> [train_encoder, reused]
    train_encoder >> build_codebook >> validate_sids
    reused >> validate_sids
    validate_sids >> validated >> [train_ranker, baseline]
    # evaluate draws the baseline beside the candidate (auc_by_bucket), so it waits for it
    [train_ranker, baseline] >> evaluate
    evaluate >> validate_model >> promote


saviorrec_daily()
