"""Which checkout of the repository is in use: where the base params.yaml, runs/ and registry/ are.

Several checkouts may share one virtual environment (the package is installed, editable, from
one of them), so the install location does not say which checkout a person works in. In order:

1. ``$SAVIORREC_REPO`` (``scripts/airflow_env.sh`` exports it for every Airflow process);
2. the nearest folder, from the current directory up, holding both ``params.yaml`` and
   ``dvc.yaml`` (a run folder or bundle holds a params.yaml but no dvc.yaml);
3. the checkout the package is installed from.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SAVIORREC_REPO"
MARKERS = ("params.yaml", "dvc.yaml")
INSTALLED_CHECKOUT = Path(__file__).resolve().parents[3]  # src/saviorrec/config/repository.py -> the checkout


def _is_checkout(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MARKERS)


def repository_root(cwd: str | Path | None = None) -> Path:
    """The root of the checkout in use (see the module docstring for the order)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser().resolve()
    here = Path(cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder
    return INSTALLED_CHECKOUT
