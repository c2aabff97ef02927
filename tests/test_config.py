"""params.yaml loading: preset overlays, overrides, validation errors that name the key."""

from __future__ import annotations

import pytest
import yaml

from saviorrec.config import ParamsError, load_params, pin_overrides
from tests.conftest import REPO


def test_preset_overlay_and_override_order():
    tiny = load_params(REPO / "params.yaml", {"preset": "tiny"})
    assert tiny.synthetic.n_days == 6 and tiny.codebook.codebook_size == 16
    overridden = load_params(REPO / "params.yaml", {"preset": "tiny", "codebook.codebook_size": 8})
    assert overridden.codebook.codebook_size == 8  # an explicit override beats the preset


def test_invalid_values_name_the_key():
    with pytest.raises(ParamsError, match=r"ranker\.lr"):
        load_params(REPO / "params.yaml", {"ranker.lr": -1})
    with pytest.raises(ParamsError, match=r"ranker\.not_a_key"):
        load_params(REPO / "params.yaml", {"ranker.not_a_key": 1})
    with pytest.raises(ParamsError, match="unknown preset"):
        load_params(REPO / "params.yaml", {"preset": "huge"})
    with pytest.raises(ParamsError, match="eval_end"):
        load_params(REPO / "params.yaml", {"split.train_end": "2024-01-10", "split.eval_end": "2024-01-09"})


def test_pinned_overrides_survive_the_preset_overlay(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(pin_overrides(raw, {"preset": "tiny", "ranker.epochs": 7})))
    params = load_params(path)
    assert params.preset == "tiny" and params.ranker.epochs == 7
    assert params.synthetic.n_days == 6  # the rest of the tiny overlay still applies
