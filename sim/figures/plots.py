"""Plots of an ensemble's quantile table (sim.running.runner.quantile_table): medians over members with their 90% band,
and the published figures from calibration/targets.toml they are judged against (sim.figures explains the marks)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from sim import figures
from sim.core.catalogue import families
from sim.core.observe import slug
from sim.core.population import REGIONS

COLOURS = {"cn": "#d62728", "us": "#1f77b4", "eu": "#2ca02c", "open": "#ff7f0e", "closed": "#7f7f7f"}


def _finish(ax, title, ylabel, published: bool = True):
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    figures.year_axis(ax)
    figures.legend_with_marks(ax, published=published, loc="best")


def _save(fig, path: Path, published: bool = True):
    figures.save(fig, path, 110, id_note_room=0.03 if published else 0.0)


def _plot_shares(table, path: Path, title: str, series: dict[str, tuple[str, str]], ylabel: str):
    """Median and 90% band of each share series (metric: colour, label), in percent, with its published figures."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for metric, (colour, label) in series.items():
        figures.band(ax, figures.rows_of(table, metric), colour, label, 100)
    figures.observed(ax, {metric: colour for metric, (colour, _) in series.items()}, 100)
    ax.set_ylim(0, 100)
    _finish(ax, title, ylabel)
    _save(fig, path)


def plot_open_closed(table, path: Path, title: str):
    _plot_shares(table, path, f"{title}: open-weight share (closed = 100% minus open)",
                 {"or_share_open": (COLOURS["open"], "open weights, marketplace tokens"),
                  "ent_share_open_us": (COLOURS["closed"], "open weights, US enterprise workloads")}, "share (%)")


def plot_marketplace_origin(table, path: Path, title: str):
    _plot_shares(table, path, f"{title}: marketplace (OpenRouter-like) token share by model origin",
                 {f"or_share_{o}": (COLOURS[o], f"{o.upper()}-origin models") for o in ("cn", "us", "eu")},
                 "share of tokens (%)")


def plot_huggingface(table, path: Path, title: str):
    """Cumulative downloads and derivatives per open family (median and 90% band, log scale) with the published
    Hugging Face levels (HF5, HF6) on the same axes."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4))
    cmap = plt.get_cmap("tab10")
    open_families = [f for f in families() if f.open_weights]
    for ax, kind, scale, unit in ((axes[0], "downloads", 1e-6, "millions"), (axes[1], "derivatives", 1e-3,
                                                                                  "thousands")):
        colours = {}
        for i, family in enumerate(open_families):
            metric = f"hf_{kind}_cum_{slug(family.name)}"
            colours[metric] = cmap(i % 10)
            figures.band(ax, figures.rows_of(table, metric), colours[metric], f"{family.name} ({family.origin})",
                         scale)
        figures.observed(ax, colours, scale)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-2)
        _finish(ax, f"{title}: cumulative Hugging Face {kind}" if kind == "downloads" else
                "cumulative derivative models (fine-tunes, quantisations)", f"{kind} ({unit}, log scale)")
        ax.legend(handles=ax.get_legend().legend_handles, fontsize=7, ncol=2, loc="upper left")
    _save(fig, path)


def plot_cn_by_region(table, path: Path, title: str):
    """Small multiples, one region a panel, so the bands do not hide each other."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True, sharey=True)
    for ax, region in zip(axes.ravel(), REGIONS):
        figures.band(ax, figures.rows_of(table, f"share_cn_{region}"), COLOURS["cn"], "median over runs", 100)
        ax.set_title(region.replace("_", " "), fontsize=10)
        ax.set_ylim(0, 100)
        figures.year_axis(ax)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of tokens (%)")
    axes[0, 0].legend(handles=figures.mark_handles(published=False)[:1], fontsize=8, loc="upper left")
    fig.suptitle(f"{title}: Chinese-origin share of all usage, by region", fontsize=11)
    _save(fig, path, published=False)


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
