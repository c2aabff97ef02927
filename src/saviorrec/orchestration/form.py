"""The run form: what a person may override when triggering `saviorrec_daily`.

One pydantic model is the source of truth. The DAG turns it into Airflow ``Param``s
(JSON-schema types, enums, ranges shown by the UI form) and the first task validates the
submitted values again server-side, because a conf sent through the REST API or CLI never
passed the browser's checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from saviorrec.config import REPO_PARAMS, available_presets
from saviorrec.config.errors import describe_validation_error
from saviorrec.config.model import DataSource, Params, RankerVariant

DataSourceName = Literal[get_args(DataSource.model_fields["source"].annotation)]  # type: ignore[misc]

# Keys a free-form override may never touch: paths and storage are the operator's, the data
# source has its own checked fields, and the preset its own field (checked against the overlays).
PROTECTED_SECTIONS = ("paths", "registry", "airflow", "data", "preset")


class FormError(ValueError):
    """The run form is invalid; the message names the field and the problem."""


class RunForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_source: DataSourceName = Field(
        "synthetic", description="synthetic | movielens (a ratings.csv folder) | parquet (data-contract files)"
    )
    data_path: str | None = Field(
        None, description="folder or s3:// URI of the source, relative to (or inside) the data root; empty: params.yaml"
    )
    preset: str = Field("default", description="params preset (size of the run)")
    ranker_variant: RankerVariant = Field("saviorrec", description="ranker model variant")
    ranker_epochs: int | None = Field(None, ge=1, le=100, description="ranker epochs; empty: the preset's value")
    skip_encoder_refresh: bool = Field(False, description="reuse the last validated encoder and codebook")
    promote: bool = Field(False, description="move the production pointer when every gate passes (a scheduled "
                                            "run follows airflow.scheduled_promote instead)")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='other params as dotted keys, e.g. {"ranker.lr": 0.001}; paths, registry, airflow, data are not allowed',
    )

    @field_validator("overrides")
    @classmethod
    def _no_protected_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not isinstance(key, str) or not key or key.split(".")[0] in PROTECTED_SECTIONS:
                raise ValueError(f"override {key!r} is not allowed (sections {', '.join(PROTECTED_SECTIONS)} are protected)")
        return value


def base_params_file() -> Path:
    """The params every run starts from: ``$SAVIORREC_PARAMS`` or the repository's params.yaml."""
    return Path(os.environ.get("SAVIORREC_PARAMS") or REPO_PARAMS).resolve()


def preset_choices() -> list[str]:
    """The presets a run may pick: the overlays of the base params file."""
    return available_presets(base_params_file())


def form_defaults(params: Params) -> RunForm:
    """The form pre-filled from params.yaml."""
    return RunForm(
        data_source=params.data.source,
        preset=params.preset,
        ranker_variant=params.ranker.variant,
    )  # promote stays unticked: a manual run replaces production only when someone asks


def json_schema_fields() -> dict[str, dict[str, Any]]:
    """Per-field JSON schema (type, enum, minimum, maximum, description) for Airflow Params."""
    schema = RunForm.model_json_schema()
    fields = {}
    for name, spec in schema["properties"].items():
        spec = dict(spec)
        spec.pop("title", None)
        spec.pop("default", None)
        if "anyOf" in spec:  # Optional[X] -> {"type": [X, "null"], ...}
            options = spec.pop("anyOf")
            types = [o.get("type") for o in options]
            for o in options:
                spec.update({k: v for k, v in o.items() if k != "type"})
            spec["type"] = types
        if "const" in spec:
            spec["enum"] = [spec.pop("const")]
        fields[name] = spec
    return fields


def resolve_data_root(params: Params, base_dir: Path) -> str:
    root = os.environ.get("SAVIORREC_DATA_ROOT") or params.airflow.data_root
    if root.startswith("s3://"):
        return root.rstrip("/") + "/"
    return str((base_dir / root).resolve())


def check_data_path(path: str, data_root: str) -> str:
    """The absolute path (or s3:// URI) of a form data path, refusing anything outside the data root."""
    if data_root.startswith("s3://"):
        uri = path if path.startswith("s3://") else data_root + path.lstrip("/")
        parts = uri[len("s3://"):].split("/")
        if ".." in parts or not uri.startswith(data_root):
            raise FormError(f"data_path {path!r} is outside the data root {data_root}")
        return uri
    if path.startswith("s3://") or "://" in path:
        raise FormError(f"data_path {path!r}: only local paths under the data root {data_root} are allowed")
    root = Path(data_root)
    resolved = (root / path).resolve()  # follows symlinks and `..`
    if resolved != root and root not in resolved.parents:
        raise FormError(f"data_path {path!r} resolves to {resolved}, outside the data root {root}")
    return str(resolved)


def validate_form(conf: dict[str, Any] | None, params: Params) -> RunForm:
    """Check submitted form values (Airflow params or a REST conf); FormError names the field."""
    values = {k: v for k, v in (conf or {}).items() if v is not None or k in ("data_path", "ranker_epochs")}
    try:
        form = RunForm.model_validate(values)
    except ValidationError as err:
        problems = describe_validation_error(err, empty="form")
        raise FormError(f"invalid run form: {problems}") from None
    choices = preset_choices()
    if form.preset not in choices:
        raise FormError(f"invalid run form: preset {form.preset!r} is not one of {choices}")
    return form


def promote_policy(form: RunForm, run_type: str, params: Params) -> str:
    """``registry.promote`` of a run: a scheduled run follows ``airflow.scheduled_promote`` (the daily
    refresh's job); a manual run or a backfill promotes only when its form asks."""
    if run_type == "scheduled":
        return params.airflow.scheduled_promote
    return "always" if form.promote else "never"


def form_overrides(form: RunForm, params: Params, base_dir: Path, promote: str | None = None) -> dict[str, Any]:
    """Dotted params overrides for a validated form (data path checked against the data root);
    ``promote`` is the run's policy (default: the form's choice, as for a manual run)."""
    overrides: dict[str, Any] = {
        "preset": form.preset,
        "data.source": form.data_source,
        "ranker.variant": form.ranker_variant,
        "registry.promote": promote or promote_policy(form, "manual", params),
    }
    if form.data_path:
        overrides["data.path"] = check_data_path(form.data_path, resolve_data_root(params, base_dir))
    if form.ranker_epochs is not None:
        overrides["ranker.epochs"] = form.ranker_epochs
    overrides.update(form.overrides)
    return overrides
