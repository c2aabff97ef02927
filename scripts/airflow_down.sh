#!/usr/bin/env bash
# Stop the Airflow servers scripts/airflow_up.sh started, by the PIDs it wrote.
set -uo pipefail
source "$(dirname "$0")/airflow_env.sh"
state="$SAVIORREC_AIRFLOW_STATE"
stopped=0
for pidfile in "$state"/*.pid; do
  [ -e "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 -- "-$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null  # the whole process group (airflow_up starts each with setsid)
    stopped=$((stopped + 1))
  fi
done
for _ in $(seq 1 30); do  # wait up to 30 s for a clean exit, then force
  alive=0
  for pidfile in "$state"/*.pid; do
    [ -e "$pidfile" ] && kill -0 -- "-$(cat "$pidfile")" 2>/dev/null && alive=1  # anyone left in the group
  done
  [ "$alive" -eq 0 ] && break
  sleep 1
done
for pidfile in "$state"/*.pid; do
  [ -e "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill -0 -- "-$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$pidfile"
done
echo "stopped $stopped Airflow process(es)"
