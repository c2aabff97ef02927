"""The "Data Docs" button of a gate task: an Airflow operator extra link to the gate run's page.

Airflow 3 computes an operator's extra links in the worker when the task ends (passed or
failed) and stores each as an XCom, which the UI shows as a button on the task instance. The
link is read from the gate's verdict file (``reports/gates/<gate>.json``), so a failed gate,
the case worth opening, gets its link too. The Data Docs are files in the run folder: the
link is a ``file://`` URL, openable on the machine that ran the task.
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import BaseOperatorLink

ROOT_TASK = "prepare"  # returns the run folder


def gate_page_url(root: str | Path | None, gate: str) -> str:
    """``file://`` URL of the gate's Data Docs page in run folder ``root``; "" before the gate judged."""
    if not root:
        return ""
    from saviorrec.workspace import Workspace

    path = Workspace.open(root).gate_file(gate)
    if not path.is_file():
        return ""
    verdict = json.loads(path.read_text())
    page = verdict.get("data_docs_page") or verdict.get("data_docs")
    return Path(page).as_uri() if page else ""


class DataDocsLink(BaseOperatorLink):
    name = "Data Docs"

    def get_link(self, operator, *, ti_key) -> str:
        # In the worker ``ti_key`` is the running task instance, which can read prepare's XCom.
        return gate_page_url(ti_key.xcom_pull(task_ids=ROOT_TASK), operator.task_id)
