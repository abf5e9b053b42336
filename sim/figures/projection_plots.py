"""Charts of scenario projections (sim.running.project): fan charts per scenario, a comparison of all scenarios and
regional bars for 2030. Bands: 5-95% (light) and 25-75% (dark) of the ensemble; lines: medians."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim import figures
from sim.core.population import REGIONS

FAN_COLOUR = "#1f77b4"
DIFF_COLOUR = "#d62728"
COMPARISON_METRICS = {
    "or_share_cn": "Chinese-origin share of marketplace tokens",
    "or_share_open": "Open-weight share of marketplace tokens",
    "ent_share_open_us": "Open-weight share of US enterprise workloads",
}


def fan_chart(quantiles: pd.DataFrame, diff: pd.DataFrame | None, path: Path, scenario: str, metric: str,
              label: str) -> None:
    """Level fan (left) and, for a non-baseline scenario, the paired difference from baseline (right)."""
    panels = 1 if diff is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    ax = axes[0, 0]
    figures.band(ax, figures.rows_of(quantiles, metric), FAN_COLOUR, None, 100)
    figures.observed(ax, {metric: FAN_COLOUR}, 100)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share (%)")
    ax.set_title(f"{scenario}: {label}", fontsize=10)
    figures.year_axis(ax)
    figures.legend_with_marks(ax, quartiles=True, loc="best")
    if diff is not None:
        ax = axes[0, 1]
        figures.band(ax, figures.rows_of(diff, metric), DIFF_COLOUR, None, 100)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel("difference from baseline (percentage points)")
        ax.set_title("paired difference from baseline (same seeds and parameters)", fontsize=10)
        figures.year_axis(ax)
        figures.legend_with_marks(ax, quartiles=True, published=False, loc="best")
    figures.save(fig, path, 100, id_note_room=0.04)


def region_bars(quantiles: pd.DataFrame, path: Path, scenario: str, date: str,
                baseline: pd.DataFrame | None = None) -> None:
    """Chinese-origin share of usage by region in `date`: median bars with 90% whiskers (baseline as ticks)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(REGIONS))
    rows = quantiles[quantiles.date == date].set_index("metric")
    q = rows.loc[[f"share_cn_{r}" for r in REGIONS]]
    ax.bar(x, 100 * q.q50, color=FAN_COLOUR, alpha=0.8, label=scenario)
    ax.errorbar(x, 100 * q.q50, yerr=[100 * (q.q50 - q.q05), 100 * (q.q95 - q.q50)], fmt="none", ecolor="black",
                capsize=4, label="90% of runs")
    if baseline is not None:
        b = baseline[baseline.date == date].set_index("metric").loc[[f"share_cn_{r}" for r in REGIONS]]
        ax.scatter(x, 100 * b.q50, marker="_", s=600, color="black", label="baseline median", zorder=5)
    ax.set_xticks(x, [r.replace("_", " ") for r in REGIONS])
    ax.set_ylim(0, 100)
    ax.set_ylabel("Chinese-origin share of usage (%)")
    ax.set_title(f"{scenario}: Chinese-origin share of all usage by region, {date}", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    figures.save(fig, path, 100)


def scenario_plots(quantiles: pd.DataFrame, diff: pd.DataFrame | None, folder: Path, scenario: str,
                   metrics: dict[str, str], date: str, baseline: pd.DataFrame | None = None) -> None:
    """Fan charts of the key metrics (with the paired difference unless `diff` is None) and regional bars."""
    for metric, label in metrics.items():
        fan_chart(quantiles, diff, folder / f"fan_{metric}.png", scenario, metric, label)
    region_bars(quantiles, folder / f"regions_{date[:4]}.png", scenario, date, baseline)


def _styles(names: list[str]):
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        yield name, ("black" if name == "baseline" else cmap(i % 10)), ("-" if i < 10 else "--")


def comparison(quantiles: dict[str, pd.DataFrame], path: Path) -> None:
    """Medians of every scenario for the headline shares; the baseline's 90% band for scale."""
    fig, axes = plt.subplots(1, len(COMPARISON_METRICS), figsize=(6 * len(COMPARISON_METRICS), 5), sharey=True)
    for ax, (metric, label) in zip(axes, COMPARISON_METRICS.items()):
        if "baseline" in quantiles:
            rows = figures.rows_of(quantiles["baseline"], metric)
            ax.fill_between(rows.when, 100 * rows.q05, 100 * rows.q95, color="black", alpha=0.1, linewidth=0,
                            label="baseline, 90% of runs")
        for name, colour, style in _styles(list(quantiles)):
            rows = figures.rows_of(quantiles[name], metric)
            ax.plot(rows.when, 100 * rows.q50, color=colour, linestyle=style, linewidth=2 if name == "baseline"
                    else 1.5, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_ylim(0, 100)
        figures.year_axis(ax)
    axes[0].set_ylabel("share (%), median over runs")
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    figures.save(fig, path, 100)


def regions_2030(quantiles: dict[str, pd.DataFrame], path: Path, date: str) -> None:
    """Chinese-origin share of usage by region in `date`, one bar per scenario (median, 90% whiskers)."""
    names = list(quantiles)
    fig, ax = plt.subplots(figsize=(max(10, 1.6 * len(REGIONS) * len(names) / 5), 5.5))
    width = 0.8 / len(names)
    x = np.arange(len(REGIONS))
    for i, (name, colour, _) in enumerate(_styles(names)):
        rows = quantiles[name]
        q = rows[rows.date == date].set_index("metric").loc[[f"share_cn_{r}" for r in REGIONS]]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, 100 * q.q50, width, color=colour, label=name)
        ax.errorbar(pos, 100 * q.q50, yerr=[100 * (q.q50 - q.q05), 100 * (q.q95 - q.q50)], fmt="none",
                    ecolor="#444444", elinewidth=0.8, capsize=1.5)
    ax.set_xticks(x, [r.replace("_", " ") for r in REGIONS])
    ax.set_ylim(0, 100)
    ax.set_ylabel("Chinese-origin share of usage (%)")
    ax.set_title(f"Chinese-origin share of all usage by region, {date}: median and 90% of runs per scenario",
                 fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    figures.save(fig, path, 100)
