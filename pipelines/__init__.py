"""Stage entry points, shared by dvc.yaml (``python -m pipelines.STAGE``) and the Airflow DAG.

Each module exposes ``run(params, workspace, **options) -> dict`` (a JSON-able summary)
and ``main()`` (the command line). Stages are thin: read params, call ``saviorrec``,
write declared outputs and metrics.
"""

STAGES = [
    "ingest",
    "validate_logs",
    "train_encoder",
    "build_codebook",
    "validate_sids",
    "train_ranker",
    "evaluate",
    "validate_model",
    "promote",
]
