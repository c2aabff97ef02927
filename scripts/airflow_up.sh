#!/usr/bin/env bash
# Start saviorrec's Airflow: API server (UI), scheduler, DAG processor, triggerer on 127.0.0.1,
# log servers off; with AIRFLOW__CORE__EXECUTOR=CeleryExecutor also one Celery worker on the
# `default` queue and one on the `gpu` queue. PIDs go to $SAVIORREC_AIRFLOW_STATE; stop with
# scripts/airflow_down.sh (make airflow-down).
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
state="$SAVIORREC_AIRFLOW_STATE"
mkdir -p "$AIRFLOW_HOME" "$state"
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated}"

# Server logs shown here may hold the admin password: the simple auth manager prints it when it
# generates it. Mask it (and any value of the password file) before it reaches a terminal or CI log.
hide_passwords() {
  python -c '
import json, re, sys
try:
    values = [v for v in json.load(open(sys.argv[1])).values() if v]
except (OSError, ValueError, AttributeError):
    values = []
for line in sys.stdin:
    line = re.sub(r"(Password for user \S+: )\S+", r"\1<hidden>", line)
    for value in values:
        line = line.replace(value, "<hidden>")
    sys.stdout.write(line)
' "$passwords"
}

for pidfile in "$state"/*.pid; do
  [ -e "$pidfile" ] || continue
  if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "Airflow already running ($(basename "$pidfile" .pid) pid $(cat "$pidfile")); run scripts/airflow_down.sh first" >&2
    exit 1
  fi
  rm -f "$pidfile"
done

airflow db migrate >"$state/db-migrate.log" 2>&1 || { hide_passwords <"$state/db-migrate.log" >&2; exit 1; }
settings=$(python -c "from saviorrec.orchestration.workspace import load_base_params as l; a=l()[0].airflow; print(a.gpu_pool, a.gpu_pool_slots, a.gpu_queue, a.schedule)")
read -r pool slots gpu_queue schedule <<<"$settings"
airflow pools set "$pool" "$slots" "training tasks (one per GPU)" >/dev/null

# The daily schedule is off unless asked for (SAVIORREC_AIRFLOW_SCHEDULE, else params airflow.schedule):
# then "unpause on trigger" in the UI starts only the run the form asked for, instead of also a
# scheduled run with the default preset that takes the only slot (max_active_runs) first.
# Manual runs and backfills run either way. An explicit AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE wins.
case "${SAVIORREC_AIRFLOW_SCHEDULE:-$schedule}" in
  1|true|True|yes|on) schedule_on=True ;;
  0|false|False|no|off|"") schedule_on=False ;;
  *) echo "SAVIORREC_AIRFLOW_SCHEDULE=${SAVIORREC_AIRFLOW_SCHEDULE}: expected true or false" >&2; exit 2 ;;
esac
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="${AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE:-$schedule_on}"

start() {  # name, command...: run in its own session so airflow_down can stop the whole group
  local name=$1; shift
  setsid "$@" >"$state/$name.log" 2>&1 < /dev/null &
  echo $! >"$state/$name.pid"
}
start api-server airflow api-server -H 127.0.0.1 -p "$SAVIORREC_AIRFLOW_PORT"
# Processes that fork task processes import the pipeline's libraries once, up front: every
# task inherits them instead of spending seconds on imports (saviorrec.orchestration.preload).
warm="python -m saviorrec.orchestration.preload"
start scheduler $warm scheduler --skip-serve-logs
start dag-processor airflow dag-processor
start triggerer airflow triggerer --skip-serve-logs
if [ "$AIRFLOW__CORE__EXECUTOR" = "CeleryExecutor" ]; then
  start worker-default $warm celery worker -q default -H "default@%h" --skip-serve-logs
  start worker-gpu $warm celery worker -q "$gpu_queue" -H "$gpu_queue@%h" --skip-serve-logs
fi

url="http://127.0.0.1:$SAVIORREC_AIRFLOW_PORT"
for _ in $(seq 1 120); do
  if python -c "import urllib.request,sys; urllib.request.urlopen('$url/api/v2/monitor/health', timeout=2)" 2>/dev/null; then
    echo "Airflow is up: $url ($AIRFLOW__CORE__EXECUTOR, DAGs from $AIRFLOW__CORE__DAGS_FOLDER)"
    if [ "$AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE" = "True" ]; then
      echo "daily schedule: on (unpaused DAGs get their scheduled runs)"
    else
      echo "daily schedule: off (only the runs you trigger, and backfills; SAVIORREC_AIRFLOW_SCHEDULE=true turns it on)"
    fi
    echo "log in as admin; the password is in $passwords"
    echo "server logs and PIDs: $state"
    exit 0
  fi
  for pidfile in "$state"/*.pid; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      name=$(basename "$pidfile" .pid)
      echo "$name exited; its log ($state/$name.log) ends with (passwords hidden):" >&2
      tail -n 20 "$state/$name.log" | hide_passwords >&2
      bash "$(dirname "$0")/airflow_down.sh"
      exit 1
    fi
  done
  sleep 1
done
echo "the API server did not answer on $url within 120 s (see $state/api-server.log)" >&2
bash "$(dirname "$0")/airflow_down.sh"
exit 1
