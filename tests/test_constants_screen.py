"""tools/constants_screen.py: the Morris screen of the hand-set constants is generated from the parameter table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.calibration.calibration_config import load_config
from sim.core.parameters import PARAMETERS, Parameter
from sim.inputs.sweep_spec import load_spec
from sim.inputs.targets import OBSERVATION_SCALES

TOOL = Path(__file__).resolve().parents[1] / "tools" / "constants_screen.py"
_spec = importlib.util.spec_from_file_location("constants_screen", TOOL)
screen = sys.modules["constants_screen"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(screen)


def _write(folder: Path) -> tuple:
    assert screen.main(["write", "--dir", str(folder), "--trajectories", "2", "--replicates", "1",
                        "--agents", "200"]) == 0
    return tuple(load_spec(path) for path in (folder / screen.SPEC.name, screen.noise_path("noise", folder),
                                              screen.noise_path("reseed", folder)))


def test_the_screen_sweeps_every_numeric_parameter_that_is_neither_fitted_nor_drawn(tmp_path):
    spec, noise, reseed = _write(tmp_path)  # load_spec: the sweep checker accepts both
    priors = {p.name for p in load_config().priors}
    expected = {name for name, p in PARAMETERS.items()
                if p.kind in (int, float) and p.source != "structural" and not p.behavioural and not p.drawn
                and name not in priors and name not in OBSERVATION_SCALES and name not in screen.EXCLUDED}
    swept = {a.name: a for a in spec.axes}
    assert expected and expected <= set(swept)
    assert {n for n in swept if n not in expected} == (set(screen.REFERENCE_FITTED)
                                                        | {n for n, p in PARAMETERS.items() if p.drawn})
    for name in expected:  # each constant over its whole table range
        assert (swept[name].low, swept[name].high) == (PARAMETERS[name].low, PARAMETERS[name].high), name
    for name, p in PARAMETERS.items():
        if p.drawn:
            assert (swept[name].low, swept[name].high) == pytest.approx(p.drawn, rel=1e-3), name
    # the exclusions are numeric knobs the calibration does not fit, each with its reason
    for name, why in screen.EXCLUDED.items():
        assert PARAMETERS[name].kind is float and name not in priors and why
    assert spec.design == "morris" and spec.posterior and spec.common_seeds
    assert [f"{o}@{screen.MONTH}" for o in screen.OBSERVABLES] == [f"{o}@{m}" for o, m in spec.sensitivity_outputs]
    assert noise.posterior and noise.common_seeds and noise.replicates == spec.replicates
    assert noise.fixed == spec.fixed and noise.observables == spec.observables
    assert not reseed.common_seeds and reseed.axes == noise.axes and reseed.replicates == spec.replicates


def test_a_new_hand_set_constant_enters_the_screen(tmp_path, monkeypatch):
    monkeypatch.setitem(PARAMETERS, "new_constant", Parameter("new_constant", 1.0, 0.5, 2.0, "a new constant"))
    monkeypatch.setitem(PARAMETERS, "new_fitted", Parameter("new_fitted", 1.0, 0.5, 2.0, behavioural=True))
    spec, _, _ = _write(tmp_path)
    swept = {a.name: a for a in spec.axes}
    assert (swept["new_constant"].low, swept["new_constant"].high) == (0.5, 2.0)
    assert "new_fitted" not in swept
    assert screen.classify()["new_fitted"] == "fitted (behavioural)"


def test_noise_is_the_mean_pairwise_gap_of_replicate_means_over_the_morris_step(tmp_path):
    rows = [{"run_id": 2 * point + r, "point": point, "replicate": r, "month": screen.MONTH,
             **{o: value + (0.05 if r else -0.05) for o in screen.OBSERVABLES}}
            for point, value in enumerate([0.1, 0.2, 0.4]) for r in range(2)]
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    noise = screen.noise_mu_star(tmp_path)
    # replicate means 0.1, 0.2, 0.4: gaps 0.1, 0.3, 0.2, mean 0.2; the Morris step with 4 levels is 2/3
    assert noise.to_numpy() == pytest.approx(np.full(3, 0.2 / (2 / 3)))


def test_verdict_compares_each_constant_with_the_largest_reference(tmp_path):
    outputs = [f"{o}@{screen.MONTH}" for o in screen.OBSERVABLES]
    mu = {"big_reference": 0.5, "small_reference": 0.1, "tiny_constant": 0.04, "minor_constant": 0.06,
          "strong_constant": 0.2}
    indices = pd.DataFrame([(out, name, "mu_star", value * (1 + k), 0.01) for k, out in enumerate(outputs)
                            for name, value in mu.items()], columns=["output", "parameter", "index", "value", "conf"])
    noise = pd.Series(0.02, index=list(screen.OBSERVABLES))
    table = screen.screen_table(indices, noise, ["tiny_constant", "minor_constant", "strong_constant"])
    assert table.loc["tiny_constant", "verdict"] == "matters little"  # 0.08 of the top reference everywhere
    assert table.loc["minor_constant", "verdict"] == "minor"  # 0.12
    assert table.loc["strong_constant", "verdict"] == "matters"  # 0.4
    assert table.loc["strong_constant", "or_share_cn / top"] == pytest.approx(0.4)
    assert table.loc["tiny_constant", "/ noise"] == pytest.approx(0.04 * 3 / 0.02)  # largest on the third output
    assert table.loc["tiny_constant", "or_share_cn conf"] == 0.01
    assert list(table.index) == ["strong_constant", "minor_constant", "tiny_constant"]


def test_an_external_constant_is_set_or_scaled_in_place():
    table = {"a": (1.0, 4.0), "b": 0.5, "c": 2.0}
    original = dict(table)
    screen.External("slack", table, ("a", "b"), 0.5, 1.5, scale=True).set(1.5, original)
    assert table == {"a": (1.5, 6.0), "b": 0.75, "c": 2.0}
    screen.External("level", table, ("b", "c"), 0.1, 1.0).set(0.1, original)
    assert table == {"a": (1.5, 6.0), "b": 0.1, "c": 0.1}
    assert all(f.low < f.high and set(f.keys) <= set(f.table) for f in screen.EXTERNAL)
