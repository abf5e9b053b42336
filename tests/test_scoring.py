"""Proper scores (sim/calibration/scoring.py): the ensemble CRPS against its energy form and the normal closed form, range
observations, interval-score hand cases, and a properness check."""

import math
from dataclasses import replace

import numpy as np
import pytest

from sim.calibration.scoring import crps_ensemble, crps_normal, figure_draws, interval_score, observation, score
from sim.inputs.targets import TARGETS_TOML, load_targets


def energy_form(x, y):
    x = np.asarray(x, float)
    return np.mean(np.abs(x - y)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :]))


@pytest.mark.parametrize("y", [-3.0, 0.1, 0.5, 2.0, 7.0])
def test_ensemble_crps_equals_its_energy_form(y):
    x = np.random.default_rng(1).gamma(2.0, 1.0, 60)
    assert crps_ensemble(x, y) == pytest.approx(energy_form(x, y), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("mu, sigma, y", [(0.0, 1.0, 0.0), (0.0, 1.0, 1.7), (2.0, 0.5, 1.0), (-1.0, 3.0, 4.0)])
def test_crps_of_a_large_normal_sample_equals_the_closed_form(mu, sigma, y):
    x = np.random.default_rng(7).normal(mu, sigma, 200_000)
    assert crps_ensemble(x, y) == pytest.approx(crps_normal(mu, sigma, y), rel=5e-3)


def test_closed_form_by_hand():
    # y at the mean: sigma (2 phi(0) - 1/sqrt(pi)) = sigma (sqrt(2) - 1) / sqrt(pi)
    assert crps_normal(0.0, 2.0, 0.0) == pytest.approx(2 * (math.sqrt(2) - 1) / math.sqrt(math.pi))


def test_range_observation_is_zero_inside_and_the_point_crps_at_its_ends():
    x = np.array([0.2, 0.3, 0.4])
    assert crps_ensemble(x, 0.1, 0.5) == 0.0  # every member inside the set
    assert crps_ensemble(x, 0.3, 0.3) == pytest.approx(energy_form(x, 0.3))
    # above 0.35: only the F^2 mass below 0.35 counts: F = 1/3 on [0.2, 0.3), 2/3 on [0.3, 0.35)
    assert crps_ensemble(x, 0.35, math.inf) == pytest.approx(0.1 / 9 + 0.05 * 4 / 9)
    # below 0.25: (1 - F)^2 above 0.25: (2/3)^2 on [0.25, 0.3), (1/3)^2 on [0.3, 0.4)
    assert crps_ensemble(x, -math.inf, 0.25) == pytest.approx(0.05 * 4 / 9 + 0.1 / 9)
    # a wider set never scores worse
    assert crps_ensemble(x, 0.45, 0.6) <= crps_ensemble(x, 0.5, 0.6) <= crps_ensemble(x, 0.55, 0.55)


def test_interval_score_hand_cases():
    assert interval_score(1.0, 3.0, 2.0) == 2.0  # inside: the width
    assert interval_score(1.0, 3.0, 0.5) == pytest.approx(2.0 + 20 * 0.5)  # 0.5 below l, 2/alpha = 20
    assert interval_score(1.0, 3.0, 4.0) == pytest.approx(2.0 + 20 * 1.0)
    assert interval_score(1.0, 3.0, 3.5, 5.0) == pytest.approx(2.0 + 20 * 0.5)  # distance to the set
    assert interval_score(1.0, 3.0, 2.5, math.inf) == 2.0
    assert interval_score(1.0, 3.0, 0.0, alpha=0.5) == pytest.approx(2.0 + 4 * 1.0)


def test_the_true_distribution_scores_better_than_a_shifted_or_wrongly_spread_one():
    rng = np.random.default_rng(3)
    ys = rng.normal(0.0, 1.0, 400)
    forecasts = {"true": rng.normal(0.0, 1.0, 2000), "shifted": rng.normal(0.7, 1.0, 2000),
                 "too narrow": rng.normal(0.0, 0.4, 2000), "too wide": rng.normal(0.0, 2.5, 2000)}
    crps = {k: np.mean([crps_ensemble(f, y) for y in ys]) for k, f in forecasts.items()}
    assert crps["true"] == min(crps.values())
    intervals = {k: np.quantile(f, [0.05, 0.95]) for k, f in forecasts.items()}
    mean_is = {k: np.mean([interval_score(*intervals[k], y) for y in ys]) for k in forecasts}
    assert mean_is["true"] == min(mean_is.values())


def test_target_scores_are_in_tolerance_units_on_each_targets_scale():
    targets = {t.id: t for t in load_targets(TARGETS_TOML)}
    or3 = targets["OR3"]  # linear, 0.13 +- 0.04
    s = score(or3, np.full(50, 0.17))
    assert s["crps"] == pytest.approx(0.04) and s["crps_tol"] == pytest.approx(1.0)
    assert s["is90_tol"] == pytest.approx(20.0 * 0.04 / 0.04) and not s["covered90"]
    hf5a = targets["HF5a"]  # log scale, 7e8 +- 2.5e8: one tolerance unit is a factor 1 + 2.5/7
    s = score(hf5a, np.full(10, 7e8 * (1 + 2.5 / 7)))
    assert s["crps_tol"] == pytest.approx(1.0)
    hf2 = targets["HF2"]  # crossover in 2025-09..2025-10, tolerance 3 months
    obs = observation(hf2)
    s = score(hf2, np.array([obs.low, obs.high, obs.high + 3]))
    assert s["crps_tol"] == pytest.approx(3 * (1 / 3) ** 2 / 3)  # F = 2/3 ... (1 - F)^2 = 1/9 over 3 months
    above = replace(or3, condition="above")
    assert score(above, np.full(5, 0.5))["crps"] == 0.0 and score(above, np.full(5, 0.5))["covered90"]
    s = score(or3, np.array([np.nan, 0.13, 0.13]))
    assert s["members"] == 2 and s["crps"] == 0.0
    assert math.isnan(score(or3, np.array([np.nan]))["crps"])


def test_figure_draws_add_one_tolerance_unit_of_error_on_the_targets_scale():
    targets = {t.id: t for t in load_targets(TARGETS_TOML)}
    or3, hf5a = targets["OR3"], targets["HF5a"]
    linear = figure_draws(or3, np.full(20000, 0.13), 1) - 0.13
    assert abs(linear.mean()) < 0.002 and linear.std() == pytest.approx(0.04, rel=0.03)
    assert figure_draws(or3, np.full(1000, 0.01), 1).min() == 0.0  # a share is never negative
    assert figure_draws(targets["HF2"], np.full(1000, 100.0), 1).min() < 100 - 3  # a month may move either way
    logs = np.log(figure_draws(hf5a, np.full(20000, 7e8), 1) / 7e8)
    assert logs.std() == pytest.approx(np.log1p(2.5 / 7), rel=0.03)
