"""Equal-information baselines: a curve per share series, fitted to exactly the in-sample figures the model sees.

Three curve families, share(t) for month t:

  logistic           L / (1 + exp(-k (t - t0)))  (the q-only limit of Bass; priors from calibration/config.toml)
  bass               m F(t - t0),  F(x) = (1 - e^{-(p+q)x}) / (1 + (q/p) e^{-(p+q)x}) for x > 0, else 0
                     (Bass 1969, Management Science 15:215; t0 = launch month, rates per month)
  generalized_bass   m F(X(t)),  X(t) = (t - t0) - beta ln(P(t) / P(t0))  (Bass, Krishnan & Jain 1994, Marketing
                     Science 13:203: a falling price advances diffusion without changing its shape). P is the
                     series' relative price: geometric mean price of its released families over that of the
                     other released families, month by month, as the model's labs set it (catalogue releases up
                     to the cutoff, then the labs' own yearly price declines; `relative_price`).

Each is fitted per series to the figures that a curve of one series can express (mean, value, max or min of the
series over the figure's window) by Bayesian inference with the tolerances as standard deviations: the figure is
the curve's statistic plus N(0, tolerance^2) noise ("above"/"below" figures: the probability that it is on the
right side; the same error model as sim/calibration/scoring.py, figure_draws). The posterior is sampled by adaptive importance sampling (prior draws, then up to IS_ROUNDS rounds
from a Gaussian fitted to the weighted draws, until the effective sample size reaches `keep`) and `keep` draws are
resampled. The predictive distribution of a figure adds the same noise to the curve's statistic, so a baseline's
intervals include the error it expects between a smooth curve and a published figure.

A series with no in-sample figure has no fit: `fit_curve` returns None, and the baseline says so (no forecast)
instead of forecasting from its prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import norm

from sim.core.calendar import month_label, parse_month
from sim.calibration.calibration_config import Prior
from sim.calibration.scoring import figure_draws
from sim.inputs.targets import Target

SHARE_SERIES = ("or_share_cn", "or_share_open", "ent_share_open_us")
OPENROUTER_SERIES = ("or_share_cn", "or_share_open")  # the calibration's logistic baseline stage
CURVE_STATISTICS = ("value", "mean", "max", "min")
FIRST_MONTH = "2023-01"  # the model's first month; curves are evaluated from here to the run's end
ESS_FRACTION = 0.5  # tempering: each stage keeps this share of the population as its effective sample size
MOVES_PER_STAGE = 10  # random-walk Metropolis moves of every particle after each stage's resampling
MOVE_SCALE = 2.38  # proposal covariance (MOVE_SCALE^2 / d) x that of the particles (Roberts et al. 1997)

# Which families make up each series, for its relative price.
SERIES_FAMILIES: dict[str, Callable] = {
    "or_share_cn": lambda family: family.origin == "CN",
    "or_share_open": lambda family: family.open_weights,
    "ent_share_open_us": lambda family: family.open_weights,
}


# ASSUMPTION (priors of the Bass curves; no figure sets them): rates per month spanning the diffusion literature
# (Sultan, Farley & Lehmann 1990, JMR 27:70: mean p 0.03, q 0.38 per year, i.e. 0.0025 and 0.032 a month) and
# ten times faster, as software adoption can be; launch between two years before the model starts and its data end.
BASS_P = (1e-4, 0.1)
BASS_Q = (0.005, 1.0)
BASS_LAUNCH = ("2021-01", "2026-01")
GBASS_BETA = (0.0, 24.0)  # months of diffusion gained per unit fall in ln(relative price)


def bass_fraction(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bass cumulative adoption fraction F(x) (rows: parameter draws; x in months since launch, 0 before it)."""
    x = np.maximum(x, 0.0)
    decay = np.exp(-(p + q)[:, None] * x)
    return (1.0 - decay) / (1.0 + (q / p)[:, None] * decay)


@dataclass(frozen=True)
class CurveFamily:
    name: str
    bounds: tuple[Prior, ...]
    shape: Callable[[dict, np.ndarray, np.ndarray | None], np.ndarray]  # (params, months, ln price) -> curves
    uses_price: bool = False

    def curves(self, params: dict[str, np.ndarray], months: np.ndarray, log_price: np.ndarray | None) -> np.ndarray:
        return self.shape(params, months, log_price)


def _logistic(v, months, _):
    return v["L"][:, None] / (1.0 + np.exp(-v["k"][:, None] * (months[None, :] - v["t0"][:, None])))


def _bass(v, months, _):
    return v["m"][:, None] * bass_fraction(v["p"], v["q"], months[None, :] - v["t0"][:, None])


def _generalized_bass(v, months, log_price):
    at_launch = np.interp(v["t0"], months, log_price)  # flat before the first month
    effective = (months[None, :] - v["t0"][:, None]) - v["beta"][:, None] * (log_price[None, :] - at_launch[:, None])
    effective = np.where(months[None, :] >= v["t0"][:, None], effective, 0.0)
    return v["m"][:, None] * bass_fraction(v["p"], v["q"], effective)


def curve_families(logistic_bounds: dict[str, tuple[float, float]]) -> dict[str, CurveFamily]:
    """The three baselines; the logistic's priors come from calibration/config.toml ([baseline] L, k, t0: k
    log-uniform), the Bass curves share its ceiling prior for m."""
    b = logistic_bounds
    launch = tuple(float(parse_month(x)) for x in BASS_LAUNCH)
    bass = (Prior("m", *b["L"]), Prior("p", *BASS_P, log=True), Prior("q", *BASS_Q, log=True), Prior("t0", *launch))
    return {
        "logistic": CurveFamily("logistic", (Prior("L", *b["L"]), Prior("k", *b["k"], log=True),
                                             Prior("t0", *b["t0"])), _logistic),
        "bass": CurveFamily("bass", bass, _bass),
        "generalized_bass": CurveFamily("generalized_bass", bass + (Prior("beta", *GBASS_BETA),), _generalized_bass,
                                        uses_price=True),
    }


def curve_targets(targets: list[Target], series: tuple[str, ...] = SHARE_SERIES) -> list[Target]:
    """Figures a curve of one share series can express: its mean, value, maximum or minimum over a window."""
    return [t for t in targets if t.metric in series and t.statistic in CURVE_STATISTICS and not t.denominator
            and t.scale == "linear"]


def window_statistic(t: Target, curves: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The target's statistic of each curve (rows)."""
    window = (months >= parse_month(t.start)) & (months <= parse_month(t.end))
    part = curves[:, window]
    return {"value": part.mean, "mean": part.mean, "max": part.max, "min": part.min}[t.statistic](axis=1)


def log_likelihood(t: Target, statistic: np.ndarray) -> np.ndarray:
    """ln p(figure | curve): the figure is the curve's statistic plus N(0, tolerance^2) noise."""
    z = (statistic - t.value) / t.tolerance
    if t.condition == "above":
        return norm.logcdf(z)
    if t.condition == "below":
        return norm.logcdf(-z)
    return -0.5 * z ** 2


@dataclass
class BaselineFit:
    family: str
    series: str
    fitted_on: tuple[str, ...]
    params: dict[str, np.ndarray]  # `keep` posterior draws
    curves: np.ndarray  # draws x months
    months: np.ndarray
    stages: int  # tempering stages from prior to posterior (more: the figures say more)

    def predictive(self, t: Target, seed) -> np.ndarray:
        """Draws of the figure `t` from the posterior predictive: the curve's statistic plus the figure's error,
        N(0, tolerance^2) (sim/calibration/scoring.py, figure_draws)."""
        return figure_draws(t, window_statistic(t, self.curves, self.months), seed)


def fit_curve(family: CurveFamily, series: str, figures: list[Target], months: np.ndarray,
              log_price: np.ndarray | None, samples: int, keep: int, seed) -> BaselineFit | None:
    """Posterior of one curve family for one series given its in-sample `figures` (module docstring); None when
    there is no figure to fit."""
    figures = [t for t in figures if t.metric == series]
    if not figures:
        return None
    rng = np.random.default_rng(seed)
    d = len(family.bounds)

    def evaluate(u):
        values = {b.name: b.values_from_unit(u[:, j]) for j, b in enumerate(family.bounds)}
        curves = family.curves(values, months, log_price)
        return values, curves, sum(log_likelihood(t, window_statistic(t, curves, months)) for t in figures)

    u = rng.random((samples, d))
    values, curves, loglik = evaluate(u)
    temperature, stages = 0.0, 0
    while temperature < 1.0:
        step = _next_temperature(loglik, temperature)
        w = np.exp((step - temperature) * (loglik - loglik.max()))
        pick = rng.choice(samples, size=samples, p=w / w.sum())
        u, loglik, temperature, stages = u[pick], loglik[pick], step, stages + 1
        chol = np.linalg.cholesky(MOVE_SCALE ** 2 / d * np.cov(u, rowvar=False) + 1e-10 * np.eye(d))
        for _ in range(MOVES_PER_STAGE):
            proposal = u + rng.standard_normal((samples, d)) @ chol.T
            inside = ((proposal >= 0) & (proposal <= 1)).all(axis=1)  # the prior is uniform on the unit cube
            proposal[~inside] = u[~inside]
            _, _, proposed = evaluate(proposal)
            accept = inside & (np.log(rng.random(samples)) < temperature * (proposed - loglik))
            u[accept], loglik[accept] = proposal[accept], proposed[accept]
    values, curves, _ = evaluate(u)
    pick = rng.choice(samples, size=keep, replace=False)
    return BaselineFit(family.name, series, tuple(t.id for t in figures),
                       {k: v[pick] for k, v in values.items()}, curves[pick], months, stages)


def _next_temperature(loglik: np.ndarray, temperature: float) -> float:
    """The next tempering exponent: the largest (up to 1) whose incremental weights keep an effective sample size
    of at least ESS_FRACTION of the population (bisection)."""
    def ess(step):
        w = np.exp((step - temperature) * (loglik - loglik.max()))
        return w.sum() ** 2 / (w ** 2).sum() / len(w)

    if ess(1.0) >= ESS_FRACTION:
        return 1.0
    lo, hi = temperature, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ess(mid) >= ESS_FRACTION else (lo, mid)
    return max(lo, temperature + 1e-6)


@cache
def relative_price(series: str, cutoff: str | None, end: str) -> np.ndarray:
    """ln of the series' relative price by month (FIRST_MONTH..end), as the model's labs set prices: the catalogue
    up to `cutoff` (all of it when None), then each family's yearly decline. Read from a small model run; prices
    do not depend on the agents, and after the cutoff only release events are random, which keep the price."""
    from sim.core.catalogue import families
    from sim.core.model import DiffusionModel

    model = DiffusionModel(rng=0, n_agents=50, end=end, catalogue_cutoff=cutoff or "")
    group = np.array([SERIES_FAMILIES[series](f) for f in families()])

    def gap():
        log_price, released = np.log(model.price), model.released
        inside, outside = released & group, released & ~group
        return log_price[inside].mean() - log_price[outside].mean() if inside.any() and outside.any() else np.nan

    rows = [gap()]
    while model.month < model.end_month:
        model.step()
        rows.append(gap())
    return pd.Series(rows).bfill().ffill().fillna(0.0).to_numpy(float)


def month_grid(end: str) -> np.ndarray:
    return np.arange(parse_month(FIRST_MONTH), parse_month(end) + 1, dtype=float)


def fit_baselines(in_sample: list[Target], families: dict[str, CurveFamily], end: str,
                  cutoff: str | None, samples: int, keep: int, seed: int | list[int],
                  series: tuple[str, ...] = SHARE_SERIES) -> dict[tuple[str, str], BaselineFit | None]:
    """Every curve family fitted to every series' in-sample figures (a curve's figures only); None marks a series
    with no in-sample figure. Seeds differ by family and series, so fits draw independent random numbers."""
    months = month_grid(end)
    usable = curve_targets(in_sample, series)
    fits = {}
    for i, family in enumerate(families.values()):
        for j, name in enumerate(series):
            price = relative_price(name, cutoff, end) if family.uses_price else None
            fits[family.name, name] = fit_curve(family, name, usable, months, price, samples, keep,
                                                [*np.atleast_1d(seed).tolist(), i, j])
    return fits


# --- the calibration's baseline stage -----------------------------------------------------------------------------
def baseline_stage(targets: list[Target], config, cutoff: str | None) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                               pd.DataFrame]:
    """The logistic baseline on the OpenRouter series, fitted to the same figures as the model (all of them, or
    those ending by `cutoff`); returns (per-target summary of its predictive draws, bands of its curves, fitted
    curve parameters). A series with no in-sample figure has no forecast: its rows are NaN, `forecast` False."""
    from sim.calibration.predictive import BAND_QUANTILES, summarise

    months = month_grid(config.run.end)
    dates = [month_label(int(m)) for m in months]
    label = "logistic_oos" if cutoff else "logistic_full"
    logistic = curve_families(config.baseline_bounds)["logistic"]
    usable = curve_targets(targets, OPENROUTER_SERIES)
    in_sample = [t for t in usable if t.fit and (cutoff is None or parse_month(t.end) <= parse_month(cutoff))]
    fits = fit_baselines(in_sample, {"logistic": logistic}, config.run.end, cutoff,
                         config.baseline_samples, config.baseline_keep, config.seed + (1 if cutoff else 0),
                         OPENROUTER_SERIES)
    summaries, band_rows, params = [], [], []
    for metric in OPENROUTER_SERIES:
        fit = fits["logistic", metric]
        series_targets = [t for t in usable if t.metric == metric]
        if fit is None:
            stats = pd.DataFrame({t.id: [np.nan] for t in series_targets})
        else:
            stats = pd.DataFrame({t.id: fit.predictive(t, [config.seed, k]) for k, t in enumerate(series_targets)})
        summary = summarise(series_targets, stats)
        summary["in_sample"] = [t in in_sample for t in series_targets]
        summary["forecast"] = fit is not None
        if fit is None:
            summary["median_discrepancy"] = np.nan  # no forecast, not a miss
        summaries.append(summary.assign(stage=label, series=metric))
        if fit is None:
            params.append(pd.DataFrame({"stage": [label], "series": metric, "fitted_on": "(none: no forecast)"}))
            continue
        qs = {name: np.quantile(fit.curves, q, axis=0) for name, q in BAND_QUANTILES.items()}
        for t in series_targets:
            band_rows.append(pd.DataFrame({"stage": label, "target": t.id, "series": metric, "date": dates, **qs}))
        params.append(pd.DataFrame({"stage": label, "series": metric, "L": fit.params["L"], "k": fit.params["k"],
                                    "t0": [month_label(int(round(x))) for x in fit.params["t0"]],
                                    "fitted_on": ",".join(fit.fitted_on)}))
    bands = pd.concat(band_rows, ignore_index=True) if band_rows else pd.DataFrame()
    return pd.concat(summaries, ignore_index=True), bands, pd.concat(params, ignore_index=True)
