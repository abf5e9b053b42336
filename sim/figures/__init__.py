"""Figure helpers shared by every chart odsim draws (runs, projections, the calibration report, the browser), so
a band, a published figure and a date axis look and read the same everywhere.

Marks: a line is the median over runs; the light band holds 90% of runs, the darker one 50% (when the table has
quartiles); a black-edged point with a bar is a published figure with its tolerance (a triangle: a peak), labelled
with its id in calibration/targets.toml (OR = OpenRouter, HF = Hugging Face, ENT = enterprise surveys).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from sim.inputs.targets import Target, load_targets  # noqa: E402

SOURCES = {"OR": "OpenRouter", "HF": "Hugging Face", "ENT": "enterprise surveys"}
ID_NOTE = "Published figures by id (calibration/targets.toml): " + ", ".join(f"{k} = {v}" for k, v in SOURCES.items())
OUTER_ALPHA, INNER_ALPHA = 0.18, 0.32


def rows_of(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A quantile table's rows for one metric, with a `when` timestamp column."""
    rows = table[table.metric == metric].copy()
    rows["when"] = pd.to_datetime(rows.date + "-01")
    return rows


def band(ax, rows: pd.DataFrame, colour, label: str | None, scale: float = 1.0) -> None:
    """Median line (labelled) over the 90% band, and the 50% band when the rows have quartiles."""
    when = rows["when"] if "when" in rows else pd.to_datetime(rows.date + "-01")
    ax.fill_between(when, rows.q05 * scale, rows.q95 * scale, color=colour, alpha=OUTER_ALPHA, linewidth=0)
    if "q25" in rows and "q75" in rows:
        ax.fill_between(when, rows.q25 * scale, rows.q75 * scale, color=colour, alpha=INNER_ALPHA, linewidth=0)
    ax.plot(when, rows.q50 * scale, color=colour, linewidth=2, label=label)


def observed(ax, metrics: dict[str, object], scale: float = 1.0, when=lambda ts: ts,
             targets: list[Target] | None = None) -> list:
    """Published figures read from the given metrics (metric -> colour): window means and values as points with
    their tolerance, peaks as triangles, each labelled with its id. Returns the artists drawn."""
    artists = []
    for target in targets if targets is not None else load_targets():
        if target.metric not in metrics or target.statistic not in ("mean", "value", "max"):
            continue
        x = when(pd.Timestamp(target.midpoint + "-01"))
        peak = target.statistic == "max"
        bars = ax.errorbar(x, target.value * scale, yerr=None if peak else target.tolerance * scale,
                           fmt="^" if peak else "o", color="black", markersize=6, capsize=3, zorder=5,
                           markerfacecolor="white" if peak else metrics[target.metric])
        artists += [artist for artist in bars.get_children() if artist is not None]
        artists.append(ax.annotate(target.id + (" peak" if peak else ""), (x, target.value * scale),
                                   textcoords="offset points", xytext=(4, 4), fontsize=7))
    return artists


def observed_window(ax, t: Target, scale: float = 1.0) -> None:
    """A published figure over its whole window: the value with its tolerance band, a one-sided condition as a
    shaded half-plane, a crossover as the months it is allowed to happen in, an ordering as its window."""
    lo, hi = pd.Timestamp(t.start + "-01"), pd.Timestamp(t.end + "-01") + pd.offsets.MonthEnd(0)
    if t.statistic == "crossover":
        pad = pd.DateOffset(months=int(t.tolerance))
        ax.axvspan(lo - pad, hi + pad, color="grey", alpha=0.15, label=f"tolerance (+-{t.tolerance:g} months)")
        ax.axvspan(lo, hi, color="black", alpha=0.25, label=f"observed crossover {t.start}..{t.end}")
        return
    if t.statistic == "order":
        ax.axvspan(lo, hi, color="black", alpha=0.08, label="window of the ordering")
        return
    value = t.value * scale
    if t.condition == "above":
        ax.fill_between([lo, hi], value, value + 1e9, color="black", alpha=0.12, label=f"observed: >= {t.value:g}")
        ax.plot([lo, hi], [value, value], color="black", linewidth=2)
    elif t.condition == "below":
        ax.fill_between([lo, hi], -1e9 if value > 0 else value - 1e9, value, color="black", alpha=0.12,
                        label=f"observed: <= {t.value:g}")
        ax.plot([lo, hi], [value, value], color="black", linewidth=2)
    else:
        tol = t.tolerance * scale
        ax.fill_between([lo, hi], value - tol, value + tol, color="black", alpha=0.15, label="observed +- tolerance")
        ax.plot([lo, hi], [value, value], color="black", linewidth=2.5, label=f"observed ({t.statistic})")


def mark_handles(quartiles: bool = False, published: bool = True) -> list:
    """Legend entries that explain the marks (add them to a legend's handles)."""
    handles = [Patch(color="grey", alpha=OUTER_ALPHA, label="90% of runs")]
    if quartiles:
        handles.append(Patch(color="grey", alpha=OUTER_ALPHA + INNER_ALPHA, label="50% of runs"))
    handles.append(Line2D([], [], color="grey", linewidth=2, label="median over runs"))
    if published:
        handles.append(Line2D([], [], marker="o", color="black", markerfacecolor="white", linestyle="none",
                              label="published figure +- tolerance"))
    return handles


def legend_with_marks(ax, quartiles: bool = False, published: bool = True, **kwargs) -> None:
    """The axes' own labelled lines followed by the entries that explain bands and published figures."""
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + mark_handles(quartiles, published), fontsize=kwargs.pop("fontsize", 8), **kwargs)


def year_axis(ax) -> None:
    ax.xaxis.set_major_locator(mdates.YearLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)


def id_note(fig) -> None:
    """A footnote saying what the published figures' id prefixes mean."""
    fig.text(0.01, 0.005, ID_NOTE, fontsize=7, color="#444444", ha="left", va="bottom")


def save(fig, path, dpi: int, id_note_room: float = 0.0) -> None:
    """Lay the figure out, write it and free it. With `id_note_room` > 0, that share of the height at the bottom
    holds the footnote on what the published figures' ids mean."""
    fig.tight_layout(rect=(0, id_note_room, 1, 1))
    if id_note_room:
        id_note(fig)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
