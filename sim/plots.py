"""Plots of an ensemble's quantile table (from sim.runner.quantile_table): bands are the 5-95% range over
members, lines the median; observed figures from calibration/targets.toml are drawn as black points."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.catalogue import families  # noqa: E402
from sim.observe import slug  # noqa: E402
from sim.population import REGIONS  # noqa: E402
from sim.targets import load_targets  # noqa: E402

COLOURS = {"cn": "#d62728", "us": "#1f77b4", "eu": "#2ca02c", "open": "#ff7f0e", "closed": "#7f7f7f"}


def _series(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = table[table.metric == metric].copy()
    rows["when"] = pd.to_datetime(rows.date + "-01")
    return rows


def _band(ax, table, metric, label, colour, scale=1.0):
    rows = _series(table, metric)
    ax.fill_between(rows.when, rows.q05 * scale, rows.q95 * scale, color=colour, alpha=0.2, linewidth=0)
    ax.plot(rows.when, rows.q50 * scale, color=colour, label=label, linewidth=2)


def _observed(ax, metrics: dict[str, str], scale=1.0):
    """Observed target points for the given metrics (metric -> colour), with their ids."""
    for target in load_targets():
        if target.metric in metrics and target.statistic in ("mean", "value"):
            when = pd.Timestamp(target.midpoint + "-01")
            ax.errorbar(when, target.value * scale, yerr=target.tolerance * scale, fmt="o", color="black",
                        markerfacecolor=metrics[target.metric], capsize=3, zorder=5)
            ax.annotate(target.id, (when, target.value * scale), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)


def _finish(ax, title, ylabel):
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _save(fig, path: Path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_open_closed(table, path: Path, title: str):
    fig, ax = plt.subplots(figsize=(9, 5))
    _band(ax, table, "or_share_open", "open weights, marketplace tokens", COLOURS["open"], 100)
    _band(ax, table, "ent_share_open_us", "open weights, US enterprise workloads", COLOURS["closed"], 100)
    _observed(ax, {"or_share_open": COLOURS["open"], "ent_share_open_us": COLOURS["closed"]}, 100)
    ax.set_ylim(0, 100)
    _finish(ax, f"{title}: open-weight share (closed = 100% minus open)", "share (%)")
    _save(fig, path)


def plot_marketplace_origin(table, path: Path, title: str):
    fig, ax = plt.subplots(figsize=(9, 5))
    for origin in ("cn", "us", "eu"):
        _band(ax, table, f"or_share_{origin}", f"{origin.upper()}-origin models", COLOURS[origin], 100)
    _observed(ax, {"or_share_cn": COLOURS["cn"], "or_share_us": COLOURS["us"], "or_share_eu": COLOURS["eu"]}, 100)
    ax.set_ylim(0, 100)
    _finish(ax, f"{title}: marketplace (OpenRouter-like) token share by model origin", "share of tokens (%)")
    _save(fig, path)


def plot_huggingface(table, path: Path, title: str):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    cmap = plt.get_cmap("tab10")
    open_families = [f for f in families() if f.open_weights]
    for i, family in enumerate(open_families):
        colour = cmap(i % 10)
        for ax, kind, scale in ((axes[0], "downloads", 1e-6), (axes[1], "derivatives", 1e-3)):
            rows = _series(table, f"hf_{kind}_cum_{slug(family.name)}")
            ax.plot(rows.when, rows.q50 * scale, color=colour, label=f"{family.name} ({family.origin})",
                    linestyle="-" if family.origin == "CN" else "--")
    _finish(axes[0], f"{title}: cumulative Hugging Face downloads", "downloads (millions)")
    _finish(axes[1], "cumulative derivative models (fine-tunes, quantisations)", "derivatives (thousands)")
    for ax in axes:
        ax.set_yscale("symlog", linthresh=1)
    _save(fig, path)


def plot_cn_by_region(table, path: Path, title: str):
    fig, ax = plt.subplots(figsize=(9, 5))
    cmap = plt.get_cmap("tab10")
    for i, region in enumerate(REGIONS):
        _band(ax, table, f"share_cn_{region}", region.replace("_", " "), cmap(i), 100)
    ax.set_ylim(0, 100)
    _finish(ax, f"{title}: Chinese-origin share of all usage, by region", "share of tokens (%)")
    _save(fig, path)


def plot_all(table: pd.DataFrame, folder: Path, title: str) -> list[Path]:
    plots = {
        "open_vs_closed.png": plot_open_closed,
        "marketplace_by_origin.png": plot_marketplace_origin,
        "huggingface.png": plot_huggingface,
        "cn_share_by_region.png": plot_cn_by_region,
    }
    for name, draw in plots.items():
        draw(table, folder / name, title)
    return [folder / name for name in plots]
