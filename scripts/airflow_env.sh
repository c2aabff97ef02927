# Environment of saviorrec's Airflow (source it: `source scripts/airflow_env.sh`).
# Local mode by default: LocalExecutor on SQLite, every server on 127.0.0.1, low parallelism.
# Scale-out mode: set AIRFLOW__CORE__EXECUTOR=CeleryExecutor plus a PostgreSQL
# AIRFLOW__DATABASE__SQL_ALCHEMY_CONN and a Redis AIRFLOW__CELERY__BROKER_URL before sourcing.
# Every value below only fills in what the caller has not set.
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SAVIORREC_REPO="${SAVIORREC_REPO:-$_repo}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$_repo/airflow_home}"
export SAVIORREC_AIRFLOW_PORT="${SAVIORREC_AIRFLOW_PORT:-8080}"
export SAVIORREC_AIRFLOW_VENV="${SAVIORREC_AIRFLOW_VENV:-$_repo/.venv}"
export PATH="$SAVIORREC_AIRFLOW_VENV/bin:$PATH"

export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$_repo/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"   # default 32 forks 32 workers
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
# Authentication on: the simple auth manager writes the generated admin password to
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$SAVIORREC_AIRFLOW_PORT"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$SAVIORREC_AIRFLOW_PORT}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$SAVIORREC_AIRFLOW_PORT/execution/}"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW__CELERY__WORKER_CONCURRENCY:-1}"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-8793}"
# Tasks talk to the API server's execution API; on a busy 2-core machine (SQLite, many
# processes) answers can take far longer than the 5 s default.
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-60}"

# The pipeline's own environment: no downloads, few threads per task.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export SAVIORREC_AIRFLOW_STATE="${SAVIORREC_AIRFLOW_STATE:-$AIRFLOW_HOME/run}"   # PID files and server logs
unset _repo
