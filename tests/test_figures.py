"""Shared figure helpers (sim/figures/__init__.py): published figures are drawn where a chart shows their series, and
legends explain the marks."""

import matplotlib.pyplot as plt

from sim import figures
from sim.inputs.targets import load_targets


def test_published_figures_are_drawn_for_the_series_a_chart_shows():
    fig, ax = plt.subplots()
    artists = figures.observed(ax, {"hf_downloads_cum_qwen": "C0", "hf_derivatives_cum_llama": "C1"}, 1e-6)
    labels = {a.get_text() for a in artists if hasattr(a, "get_text")}
    expected = {t.id for t in load_targets() if t.metric in ("hf_downloads_cum_qwen", "hf_derivatives_cum_llama")
                and t.statistic in ("mean", "value", "max")}
    assert expected and labels == expected
    # a metric with no published figure draws nothing
    assert figures.observed(ax, {"share_cn_europe": "C2"}) == []
    plt.close(fig)


def test_legend_explains_bands_medians_and_published_figures():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="series")
    figures.legend_with_marks(ax, quartiles=True)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["series", "90% of runs", "50% of runs", "median over runs", "published figure +- tolerance"]
    plt.close(fig)
