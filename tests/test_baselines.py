"""Equal-information baselines (sim/calibration/baselines.py): a Bass curve (and a generalized Bass with price) fitted to
figures generated from a known curve recovers its parameters; a series without an in-sample figure gets no
forecast instead of its prior."""

import numpy as np
import pytest

from sim.calibration.baselines import (bass_fraction, curve_families, fit_curve, month_grid, relative_price, window_statistic)
from sim.core.calendar import month_label, parse_month
from sim.inputs.targets import Target

LOGISTIC_PRIORS = {"L": (0.02, 1.0), "k": (0.03, 1.0), "t0": (float(parse_month("2023-01")), float(parse_month("2028-12")))}
END = "2026-01"
TRUTH = {"m": 0.45, "p": 0.004, "q": 0.2, "t0": float(parse_month("2023-03")), "beta": 3.0}
SERIES = "or_share_cn"
# Largest 90% interval allowed, as a share of the prior's width. Ceiling, imitation and price response shape the
# whole curve; the innovation rate p and the launch month trade off against each other (an earlier launch with a
# slower start looks the same while the share is still near zero), so the data narrow them less.
MAX_WIDTH = {"m": 0.1, "q": 0.1, "beta": 0.2, "t0": 0.4, "p": 0.7}


def figures_from(curve: np.ndarray, months: np.ndarray, tolerance: float, every: int = 3) -> list[Target]:
    """Quarterly mean figures of a known curve, observed exactly, each with the given tolerance."""
    out = []
    for i in range(0, len(months) - every + 1, every):
        start, end = month_label(int(months[i])), month_label(int(months[i + every - 1]))
        out.append(Target(id=f"F{i}", metric=SERIES, start=start, end=end, statistic="mean",
                          value=float(curve[i:i + every].mean()), tolerance=tolerance, population="synthetic",
                          source="synthetic", grade="S"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bass", "generalized_bass"])
def test_a_curve_fitted_to_figures_from_a_known_curve_recovers_its_parameters(name):
    family = curve_families(LOGISTIC_PRIORS)[name]
    months = month_grid(END)
    price = relative_price(SERIES, None, END)
    truth = {k: np.array([v]) for k, v in TRUTH.items() if k in [b.name for b in family.bounds]}
    curve = family.curves(truth, months, price)[0]
    figures = figures_from(curve, months, tolerance=0.005)
    fit = fit_curve(family, SERIES, figures, months, price, samples=10000, keep=400, seed=5)
    for bound in family.bounds:
        draws = fit.params[bound.name]
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert lo <= truth[bound.name][0] <= hi, bound.name
        width = (np.log(hi / lo) / np.log(bound.high / bound.low)) if bound.log else (hi - lo) / (bound.high - bound.low)
        assert width < MAX_WIDTH[bound.name], (bound.name, width)  # the data pin it down, not the prior
    # and the fitted curves reproduce the data
    predicted = np.median([window_statistic(t, fit.curves, months) for t in figures], axis=1)
    assert np.max(np.abs(predicted - [t.value for t in figures])) < 0.01


def test_bass_fraction_matches_the_closed_form_and_is_zero_before_launch():
    p, q = np.array([0.03]), np.array([0.38])
    x = np.array([-2.0, 0.0, 1.0, 5.0])
    expected = (1 - np.exp(-(p + q) * x)) / (1 + q / p * np.exp(-(p + q) * x))
    got = bass_fraction(p, q, x[None, :])[0]
    assert got[0] == 0.0 and got[1] == 0.0
    np.testing.assert_allclose(got[2:], expected[2:])
    # the hazard at launch is p: F'(0) = p
    assert bass_fraction(p, q, np.array([[1e-6]]))[0, 0] / 1e-6 == pytest.approx(0.03, rel=1e-4)


def test_a_series_without_an_in_sample_figure_has_no_fit():
    family = curve_families(LOGISTIC_PRIORS)["bass"]
    months = month_grid(END)
    other = figures_from(np.full(len(months), 0.2), months, 0.01)
    assert fit_curve(family, "or_share_open", other, months, None, 1000, 50, 0) is None  # figures of or_share_cn
    assert fit_curve(family, SERIES, other, months, None, 1000, 50, 0) is not None
