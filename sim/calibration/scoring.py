"""Proper scores for probabilistic forecasts of the calibration figures (Gneiting & Raftery 2007, JASA 102:359).

A forecast is an ensemble (a sample: posterior-predictive runs of the model, or draws of a baseline's predictive
distribution) of one target's statistic. Scores, lower is better:

  CRPS            continuous ranked probability score, the integral of (F(x) - 1{x >= y})^2 over x, with F the
                  ensemble's empirical CDF; in the units of the figure.
  interval score  of the central 90% interval [l, u]: (u - l) + (2/alpha)(l - y)1{y < l} + (2/alpha)(y - u)1{y > u},
                  alpha = 0.1: rewards narrow intervals, penalises misses.
  coverage        whether the 90% interval contains the observation (about 90% of figures, if calibrated).

**Figures that are ranges.** Some figures are a set, not a point: a crossover "in Sep-Oct 2025", a one-sided
"above 50%" or "no more than 25%", an ordering (smallest log-gap "above 0"). The observation is then the set
[a, b] (a or b infinite for one-sided figures), and the score is the smallest CRPS over observations consistent
with the figure: the integral of F(x)^2 below a plus (1 - F(x))^2 above b, zero inside the set. It reduces to the
CRPS when a = b, is finite for half-lines, and does not reward or punish how the forecast spreads inside the set,
which the figure says nothing about. (A uniform over the set, the other common reading, is undefined for a
half-line and charges a forecast for being sharper than the uniform inside a window the source merely rounds to.)
The interval score and coverage use the same set: the miss penalty is the distance from the interval to the set,
and an interval covers when it overlaps the set.

**Tolerance units.** Each score is also divided by the target's tolerance, so figures on different scales can
be averaged. Figures with `scale = "log"` (counts over orders of magnitude) are scored on ln of the statistic,
in units of ln(1 + tolerance / value), as sim/inputs/targets.py measures their discrepancy; crossovers in months over
their tolerance in months; orderings in log units over theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from sim.core.calendar import parse_month
from sim.inputs.targets import LOG_FLOOR, Target

ALPHA = 0.1  # 90% central intervals
SIGNED_STATISTICS = ("crossover", "order")  # a month index and a log-gap; every other statistic is >= 0


def crps_ensemble(samples: np.ndarray, low: float, high: float | None = None) -> float:
    """CRPS of an ensemble against the observation y = low, or against the set [low, high] (either end may be
    infinite): the integral of F^2 below `low` plus (1 - F)^2 above `high`, F the ensemble's empirical CDF.
    Exact, O(m log m)."""
    high = low if high is None else high
    x = np.sort(np.asarray(samples, float))
    m = len(x)
    if m == 0 or low > high:
        raise ValueError("need a non-empty ensemble and low <= high")
    # F = i/m on [x_i, x_{i+1}), i = 0..m with x_0 = -inf and x_{m+1} = +inf.
    left_edges = np.concatenate([[-np.inf], x])
    right_edges = np.concatenate([x, [np.inf]])
    level = np.arange(m + 1) / m
    with np.errstate(invalid="ignore"):  # inf - inf on the unbounded end steps, whose weight is 0
        below = np.clip(np.minimum(right_edges, low) - left_edges, 0.0, None)  # length of each step below `low`
        above = np.clip(right_edges - np.maximum(left_edges, high), 0.0, None)  # ... and above `high`
        left = np.where(level > 0, level ** 2 * below, 0.0).sum()
        right = np.where(level < 1, (1 - level) ** 2 * above, 0.0).sum()
    return float(left + right)


def crps_normal(mu: float, sigma: float, y: float) -> float:
    """Closed-form CRPS of the normal forecast N(mu, sigma^2) at y (Gneiting & Raftery 2007, eq. 21)."""
    z = (y - mu) / sigma
    return float(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi)))


def interval_score(lower: float, upper: float, low: float, high: float | None = None,
                   alpha: float = ALPHA) -> float:
    """Interval score of the central (1 - alpha) interval [lower, upper] against y = low or the set [low, high]."""
    high = low if high is None else high
    miss_below = max(0.0, lower - high)  # the whole interval lies above the observation
    miss_above = max(0.0, low - upper)
    return float((upper - lower) + (2 / alpha) * (miss_below + miss_above))


def central_interval(samples: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    lo, hi = np.quantile(np.asarray(samples, float), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Observation:
    """A target's figure on its scoring scale: the set [low, high] (a point when equal) and the tolerance unit."""

    low: float
    high: float
    unit: float
    log_value: float | None = None  # on a log scale: the figure's value (statistics are mapped by to_scale)

    def to_scale(self, statistics: np.ndarray) -> np.ndarray:
        x = np.asarray(statistics, float)
        if self.log_value is None:
            return x
        return np.log(np.maximum(x, LOG_FLOOR * self.log_value))


def observation(target: Target) -> Observation:
    """The figure of `target` as a set on its scoring scale (see the module docstring)."""
    if target.statistic == "crossover":
        return Observation(float(parse_month(target.start)), float(parse_month(target.end)), target.tolerance)
    value, unit, log_value = target.value, target.tolerance, None
    if target.scale == "log":
        log_value = target.value
        value, unit = math.log(target.value), math.log1p(target.tolerance / target.value)
    low, high = {"within": (value, value), "above": (value, math.inf),
                 "below": (-math.inf, value)}[target.condition]
    return Observation(low, high, unit, log_value)


def figure_draws(target: Target, statistics: np.ndarray, seed) -> np.ndarray:
    """Draws of the published figure from draws of the target's statistic: each plus N(0, 1) tolerance units on
    the target's scoring scale (a factor, on a log scale), kept >= 0 where the statistic cannot be negative. It is the error between a statistic and its figure
    that the baselines' likelihood assumes (sim/calibration/baselines.py), so their forecasts include it; applied to the
    model's runs, it puts the model's forecast on the same footing."""
    obs = observation(target)
    x = np.asarray(statistics, float)
    noise = obs.unit * np.random.default_rng(seed).standard_normal(len(x))
    if obs.log_value is not None:
        return x * np.exp(noise)
    if target.statistic in SIGNED_STATISTICS:
        return x + noise
    return np.maximum(x + noise, 0.0)  # shares, counts and their ratios are never negative


def score(target: Target, statistics: np.ndarray) -> dict:
    """Scores of an ensemble of `target`'s statistic: CRPS and 90% interval score, raw (on the scoring scale) and
    in tolerance units, the interval, coverage, and the PIT (share of the ensemble below a point figure). Members
    with no statistic (NaN: e.g. a ratio whose denominator is zero) are left out; `members` says how many count.
    No member left: every score is NaN."""
    obs = observation(target)
    x = obs.to_scale(statistics)
    x = x[np.isfinite(x)]
    out = {"members": int(len(x)), "obs_low": obs.low, "obs_high": obs.high, "unit": obs.unit}
    if not len(x):
        return {**out, **dict.fromkeys(("crps", "crps_tol", "is90", "is90_tol", "lo90", "hi90", "pit"), math.nan),
                "covered90": False}
    lo, hi = central_interval(x)
    crps = crps_ensemble(x, obs.low, obs.high)
    interval = interval_score(lo, hi, obs.low, obs.high)
    pit = float(np.mean(x < obs.low) + 0.5 * np.mean(x == obs.low)) if obs.low == obs.high else math.nan
    return {**out, "crps": crps, "crps_tol": crps / obs.unit, "is90": interval, "is90_tol": interval / obs.unit,
            "lo90": lo, "hi90": hi, "covered90": bool(lo <= obs.high and hi >= obs.low), "pit": pit}
