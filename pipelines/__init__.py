"""Stage entry points, shared by dvc.yaml (``python -m pipelines.STAGE``) and the Airflow DAG.

Each module exposes ``run(params, workspace, **options) -> dict`` (a JSON-able summary) and
``main()`` (the command line). Stages are thin: read params, call one ``saviorrec`` function,
write declared outputs. The list of stages is ``saviorrec.stages.STAGES``.
"""
