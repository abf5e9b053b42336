"""The calibration report's figures: posterior-predictive bands against the observed figures, the posterior
marginals and correlations, and the out-of-sample comparison with the logistic curve.

Drawn from the tables `odsim calibrate` writes to calibration/data/ (sim/calibration/calibration_report.py), with
the shared marks of sim/figures, so `odsim calibrate --report` redraws them without running the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim import figures  # noqa: E402
from sim.core.calendar import month_label, parse_month  # noqa: E402
from sim.inputs.targets import Target  # noqa: E402

STRONG_CORRELATION = 0.5  # |r| at or above this is annotated in the figure and listed in the report


def _when(label: str) -> pd.Timestamp:
    return pd.Timestamp(label + "-01")


def on_prior_scale(particles: pd.DataFrame, prior: dict) -> tuple[np.ndarray, float, float]:
    """A parameter's posterior values and prior bounds on the scale where its prior is uniform (log10 for a
    scale parameter): where a histogram and a variance compare with the prior's."""
    log = prior["scale"] == "log"
    values = particles[prior["name"]].to_numpy(float)
    bounds = (math.log10(prior["low"]), math.log10(prior["high"])) if log else (prior["low"], prior["high"])
    return (np.log10(values) if log else values), *bounds


def plot_targets(bands: pd.DataFrame, targets: list[Target], path: Path, title: str, stage: str = "fit") -> None:
    """One panel per target: posterior-predictive band (50% and 90%) of the series it is read from, and the
    observed figure over its window."""
    cols = 3
    rows = math.ceil(len(targets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.3 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, t in zip(axes.ravel(), targets):
        part = bands[(bands.stage == stage) & (bands.target == t.id)]
        series = list(dict.fromkeys(part.series))
        big = part.q95.abs().max() >= 1e4 if len(part) else False
        scale = 1e-6 if big and "downloads" in t.metric else (1e-3 if big else 1.0)
        for i, name in enumerate(series):
            label = name.replace("hf_", "").replace("_cum", "") if len(series) > 1 else "posterior predictive"
            figures.band(ax, part[part.series == name], cmap(i), label, scale)
        figures.observed_window(ax, t, scale)
        lo = parse_month(t.start)
        ax.set_xlim(_when("2023-01"), _when(month_label(max(lo + 3, parse_month("2026-01")))))
        finite = part[["q05", "q95"]].to_numpy(float) * scale
        finite = finite[np.isfinite(finite)]
        if finite.size:
            top = max(finite.max(), (t.value + t.tolerance) * scale if np.isfinite(t.value) else 0)
            bottom = min(finite.min(), 0.0)
            ax.set_ylim(bottom, top * 1.08 if top > 0 else 1)
        unit = {1e-6: " (millions)", 1e-3: " (thousands)"}.get(scale, "")
        fitted = "" if t.fit else " [not fitted]"
        ax.set_title(f"{t.id}: {t.statistic} of {series[0] if len(series) == 1 else t.metric}{fitted}"[:70],
                     fontsize=9)
        ax.set_ylabel(unit.strip(" ()") or "value", fontsize=8)
        figures.year_axis(ax)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes.ravel()[len(targets):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=12)
    figures.save(fig, path, 80)


def plot_marginals(particles: pd.DataFrame, priors: list[dict], path: Path) -> None:
    """One weighted histogram per parameter over its prior range, with the uniform prior density and the best set."""
    cols = 4
    rows = math.ceil(len(priors) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.6 * rows), squeeze=False)
    w = particles["weight"].to_numpy()
    best = particles.loc[particles["distance"].idxmin()]
    for ax, p in zip(axes.ravel(), priors):
        log = p["scale"] == "log"
        values, lo, hi = on_prior_scale(particles, p)
        ax.hist(values, bins=20, range=(lo, hi), weights=w, color="#1f77b4", alpha=0.7, density=True)
        ax.axhline(1.0 / (hi - lo), color="grey", linestyle="--", linewidth=1, label="prior")
        b = math.log10(best[p["name"]]) if log else best[p["name"]]
        ax.axvline(b, color="#d62728", linewidth=1.5, label="best set")
        ax.set_xlim(lo, hi)
        ax.set_title(("log10 " if log else "") + p["name"], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    for ax in axes.ravel()[len(priors):]:
        ax.axis("off")
    fig.suptitle("Posterior marginals (weighted histograms; dashed: uniform prior density)")
    figures.save(fig, path, 80)


def plot_correlations(corr: pd.DataFrame, path: Path) -> None:
    """The posterior correlation matrix as a heat map, strong pairs labelled with their r."""
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(corr)), corr.index, fontsize=7)
    for i in range(len(corr)):
        for j in range(len(corr)):
            value = corr.iat[i, j]
            if i != j and np.isfinite(value) and abs(value) >= STRONG_CORRELATION:
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Posterior correlations (log10 for scale parameters)")
    figures.save(fig, path, 80)


def plot_out_of_sample(bands: pd.DataFrame, targets: list[Target], cutoff: str, path: Path) -> None:
    """OpenRouter series: the model fitted only up to the cutoff vs the logistic curve fitted to the same figures."""
    shown = [t for t in targets if t.metric in ("or_share_cn", "or_share_open") and t.statistic in ("mean", "max",
                                                                                                     "value")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, metric in zip(axes, ("or_share_cn", "or_share_open")):
        mine = [t for t in shown if t.metric == metric]
        if not mine:
            continue
        ref = mine[0].id
        abm = bands[(bands.stage == "oos") & (bands.target == ref) & (bands.series == metric)]
        logistic = bands[(bands.stage == "logistic_oos") & (bands.target == ref)]
        if len(abm):
            figures.band(ax, abm, "#1f77b4", f"agent-based model, fitted to targets ending by {cutoff}", 100)
        if len(logistic):
            figures.band(ax, logistic, "#ff7f0e", "logistic curve, fitted to the same OpenRouter figures", 100)
        for t in mine:
            lo, hi = _when(t.start), _when(t.end) + pd.offsets.MonthEnd(0)
            colour = "black" if parse_month(t.end) <= parse_month(cutoff) else "#d62728"
            ax.fill_between([lo, hi], 100 * (t.value - t.tolerance), 100 * (t.value + t.tolerance), color=colour,
                            alpha=0.15)
            ax.plot([lo, hi], [100 * t.value] * 2, color=colour, linewidth=2.5)
            ax.annotate(f"{t.id} ({t.statistic})", (hi, 100 * t.value), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.axvline(_when(cutoff) + pd.offsets.MonthEnd(0), color="grey", linestyle=":", label="cutoff")
        ax.set_title(f"{metric}: black = used for fitting, red = held out", fontsize=9)
        ax.set_ylabel("share of tokens (%)")
        ax.set_ylim(0, 100)
        figures.year_axis(ax)
        ax.legend(fontsize=7, loc="upper left")
    figures.save(fig, path, 80)
