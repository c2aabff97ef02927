"""params.yaml loading: base < preset overlay (params/<preset>.yaml) < overrides, validation errors
that name the key, self-contained workspace params files, the shadowed-edit warning."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import pytest
import yaml

from saviorrec.config import (
    ParamsError,
    ShadowedParamWarning,
    available_presets,
    load_params,
    write_workspace_params,
)
from tests.conftest import REPO

PARAMS = REPO / "params.yaml"
PRESETS = ["default", "drift", "large", "movielens", "tiny"]


def test_overlay_and_override_order():
    base, tiny = load_params(PARAMS), load_params(PARAMS, {"preset": "tiny"})
    assert base.synthetic.n_days == 30 and base.codebook.codebook_size == 256
    assert tiny.synthetic.n_days == 6 and tiny.codebook.codebook_size == 64  # the overlay beats the base
    assert tiny.codebook.levels == base.codebook.levels  # keys the overlay leaves alone keep the base value
    overridden = load_params(PARAMS, {"preset": "tiny", "codebook.codebook_size": 8, "codebook.levels": 2})
    assert (overridden.codebook.codebook_size, overridden.codebook.levels) == (8, 2)  # an override beats both
    assert overridden.codebook.epochs == tiny.codebook.epochs


def test_presets_are_the_overlay_files():
    assert available_presets(PARAMS) == PRESETS == sorted(p.stem for p in (REPO / "params").glob("*.yaml"))
    assert "presets" not in yaml.safe_load(PARAMS.read_text())
    movielens = load_params(PARAMS, {"preset": "movielens"})
    assert movielens.data.source == "movielens" and str(movielens.split.train_end) == "2012-01-01"


def test_invalid_values_name_the_key():
    with pytest.raises(ParamsError, match=r"ranker\.lr"):
        load_params(PARAMS, {"ranker.lr": -1})
    with pytest.raises(ParamsError, match=r"ranker\.not_a_key"):
        load_params(PARAMS, {"ranker.not_a_key": 1})
    with pytest.raises(ParamsError, match="eval_end"):
        load_params(PARAMS, {"split.train_end": "2024-01-10", "split.eval_end": "2024-01-09"})


def test_unknown_preset_names_the_choices():
    with pytest.raises(ParamsError, match=r"unknown preset 'huge'; choose one of \['default', 'drift', 'large', 'movielens', 'tiny'\]"):
        load_params(PARAMS, {"preset": "huge"})


@pytest.mark.parametrize("preset", PRESETS)
def test_workspace_params_round_trip(tmp_path, preset):
    overrides = {"preset": preset, "ranker.epochs": 7, "checks.model.calibration_band.ratio": 0.6}
    expected = load_params(PARAMS, overrides)
    written = write_workspace_params(tmp_path / "ws", overrides, base=PARAMS)
    assert written == tmp_path / "ws" / "params.yaml"
    assert load_params(written) == expected
    # Self-contained: the file alone, away from the repository's overlays, loads the same.
    alone = tmp_path / "elsewhere" / "params.yaml"
    alone.parent.mkdir()
    shutil.copy(written, alone)
    assert load_params(alone) == expected
    assert available_presets(alone) == [preset]
    # More overrides go on top; the preset of a resolved file is fixed.
    assert load_params(alone, {"ranker.epochs": 9}) == load_params(PARAMS, {**overrides, "ranker.epochs": 9})
    assert load_params(alone, {"preset": preset}) == expected
    other = next(p for p in PRESETS if p != preset)
    with pytest.raises(ParamsError, match="resolved for preset"):
        load_params(alone, {"preset": other})


def test_workspace_params_from_a_workspace_add_overrides(tmp_path):
    write_workspace_params(tmp_path, {"preset": "tiny", "ranker.epochs": 7}, base=PARAMS)
    write_workspace_params(tmp_path, {"ranker.lr": 0.01}, base=tmp_path / "params.yaml")
    assert load_params(tmp_path / "params.yaml") == load_params(PARAMS, {"preset": "tiny", "ranker.epochs": 7,
                                                                           "ranker.lr": 0.01})


def test_files_in_the_earlier_layout_still_load(tmp_path):
    """Run folders and registry bundles written before the overlays moved to params/ carry them
    inline, and have no ``paths.pairs`` (the pairs were not an output then), nor the baseline
    stage's ``baseline:`` section and paths."""
    raw = yaml.safe_load(PARAMS.read_text())
    raw["preset"] = "tiny"
    del raw["paths"]["pairs"], raw["paths"]["baseline"], raw["paths"]["baseline_predictions"], raw["baseline"]
    raw["presets"] = {name: yaml.safe_load((REPO / "params" / f"{name}.yaml").read_text()) for name in PRESETS}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_params(tmp_path / "params.yaml") == load_params(PARAMS, {"preset": "tiny"})
    assert available_presets(tmp_path / "params.yaml") == PRESETS


# ---- a base value edited where the active preset overrides it --------------------------------

@pytest.fixture
def checkout(tmp_path):
    """A git checkout holding a copy of params.yaml and its overlays, committed."""
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    shutil.copytree(REPO / "params", tmp_path / "params")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "params"], check=True)
    return tmp_path / "params.yaml"


def _edit(path, section: str, key: str, value) -> None:
    raw = yaml.safe_load(path.read_text())
    raw[section][key] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _quiet_load(path, overrides=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShadowedParamWarning)
        return load_params(path, overrides)


def test_an_edited_base_value_the_preset_shadows_warns(checkout):
    _quiet_load(checkout, {"preset": "tiny"})  # nothing edited: quiet
    _edit(checkout, "ranker", "epochs", 3)  # tiny sets ranker.epochs: 1
    with pytest.warns(ShadowedParamWarning, match=r"ranker\.epochs = 3 .*last commit: 1.* preset 'tiny' sets it to 1"):
        params = load_params(checkout, {"preset": "tiny"})
    assert params.ranker.epochs == 1  # the warning does not change the precedence
    assert _quiet_load(checkout).ranker.epochs == 3  # the default preset does not shadow it
    assert _quiet_load(checkout, {"preset": "tiny", "ranker.epochs": 4}).ranker.epochs == 4  # an override wins


def test_edits_that_take_effect_do_not_warn(checkout):
    _edit(checkout, "ranker", "lr", 0.004)  # no preset sets ranker.lr
    assert _quiet_load(checkout, {"preset": "tiny"}).ranker.lr == 0.004


def test_no_warning_outside_a_checkout(tmp_path):
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    shutil.copytree(REPO / "params", tmp_path / "params")
    _edit(tmp_path / "params.yaml", "ranker", "epochs", 3)
    assert _quiet_load(tmp_path / "params.yaml", {"preset": "tiny"}).ranker.epochs == 1
