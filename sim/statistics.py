"""Ensemble and posterior statistics, one rule each, used by runs, projections, the calibration and the browser:
quantiles over ensemble members (NaN-aware) and weighted quantiles over posterior particles."""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd

BAND_QUANTILES = {"q05": 0.05, "q50": 0.50, "q95": 0.95}  # `odsim run`: median and 90% band
FAN_QUANTILES = {"q05": 0.05, "q25": 0.25, "q50": 0.50, "q75": 0.75, "q95": 0.95}  # projections: fan charts


def nan_quantiles(stack: np.ndarray, qs: Iterable[float]) -> list[np.ndarray]:
    """Quantiles over axis 0 ignoring NaNs (numpy's default linear rule), vectorised: np.nanquantile loops over
    every cell in Python when any NaN is present, which is slow for thousands of cells. All-NaN cells give NaN."""
    ordered = np.sort(stack, axis=0)  # NaNs sort last
    valid = (~np.isnan(stack)).sum(axis=0)
    out = []
    for q in qs:
        pos = q * np.maximum(valid - 1, 0)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, np.maximum(valid - 1, 0))
        a = np.take_along_axis(ordered, low[None], axis=0)[0]
        b = np.take_along_axis(ordered, high[None], axis=0)[0]
        value = a + (pos - low) * (b - a)
        out.append(np.where(valid > 0, value, np.nan))
    return out


def quantile_frame(stack: np.ndarray, dates: list[str], metrics: list[str],
                   quantiles: dict[str, float] = FAN_QUANTILES) -> pd.DataFrame:
    """Tidy table (date, metric, mean, quantile columns) over the members of a member x date x metric stack."""
    out: dict[str, Any] = {"date": np.repeat(dates, len(metrics)), "metric": np.tile(metrics, len(dates))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells (nothing to divide) stay NaN
        out["mean"] = np.nanmean(stack, axis=0).ravel()
    for name, values in zip(quantiles, nan_quantiles(stack, quantiles.values())):
        out[name] = values.ravel()
    return pd.DataFrame(out)


def weighted_quantiles(values, weights, qs: Iterable[float]) -> list[float]:
    """Quantiles of weighted particles: the weighted CDF at each particle's midpoint, interpolated (so equal
    weights give the usual sample quantiles and the median of two particles is their mean)."""
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(np.interp(q, cdf, v)) for q in qs]


def weighted_mean_var(values, weights) -> tuple[float, float]:
    mean = float(np.average(values, weights=weights))
    return mean, float(np.average((np.asarray(values, float) - mean) ** 2, weights=weights))


def largest_monthly_move(quantiles: pd.DataFrame, metric: str, start: str, end: str,
                         column: str = "q50") -> tuple[float, str]:
    """The largest month-to-month change of one quantile of `metric` between `start` and `end` (inclusive), and
    the month it ends in: a median that jumps where the data move smoothly shows lock-in, not diffusion."""
    rows = quantiles[(quantiles.metric == metric) & (quantiles.date >= start) & (quantiles.date <= end)]
    moves = rows.sort_values("date").set_index("date")[column].diff().abs().dropna()
    if moves.empty:
        return float("nan"), ""
    return float(moves.max()), str(moves.idxmax())
