"""The browser explorer's charts (sim/app.py): network, marketplace shares, Hugging Face downloads and derivatives,
and Chinese-origin share by region, drawn from one model run as it steps.

Pure functions of the model, so they work without a browser (tests, benchmarks/bench_viz.py). Each chart draws its
axes once and redraws only what changes each month (blitting): a step of the whole page stays well under a second.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import PIL.Image  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sim import figures  # noqa: E402
from sim.core.calendar import month_label  # noqa: E402
from sim.core.catalogue import ORIGINS  # noqa: E402
from sim.core.model import DiffusionModel  # noqa: E402
from sim.core.observe import slug  # noqa: E402
from sim.core.population import REGIONS  # noqa: E402

MAX_NETWORK_NODES = 2000  # agents drawn in the network view; more would hide structure and slow each step
DPI = 100
ORIGIN_COLOURS = {"US": ("#08519c", "#6baed6"), "CN": ("#a50f15", "#fb6a4a"), "EU": ("#006d2c", "#74c476")}
SERIES_COLOURS = {"open": "#ff7f0e", "closed": "#7f7f7f", "cn": "#d62728", "us": "#1f77b4", "eu": "#2ca02c"}
NO_MODEL_COLOUR = "#bdbdbd"


@dataclass
class NetworkSample:
    """The agents drawn in the network view, their positions and the ties among them (fixed for a model)."""

    nodes: np.ndarray
    xy: np.ndarray
    edges: np.ndarray  # (k, 2, 2) line segments
    region_centres: np.ndarray


def network_sample(model: DiffusionModel, max_nodes: int = MAX_NETWORK_NODES) -> NetworkSample:
    """Sample at most `max_nodes` agents (seeded by the model) and place them: one disc per region, agents of a
    segment on one ring of the disc. A force layout would take seconds; this is instant and shows homophily."""
    cached = getattr(model, "_network_sample", None)
    if cached is not None:
        return cached
    n = len(model.work)
    rng = np.random.default_rng([model.seed if hasattr(model, "seed") else 0, n])
    nodes = np.arange(n) if n <= max_nodes else np.sort(rng.choice(n, max_nodes, replace=False))
    pop = model.population
    region, segment = pop.region[nodes], pop.segment[nodes]
    angles = np.pi / 2 - 2 * np.pi * np.arange(len(REGIONS)) / len(REGIONS)
    centres = np.column_stack([np.cos(angles), np.sin(angles)])
    xy = np.zeros((len(nodes), 2))
    golden = np.pi * (3 - np.sqrt(5))
    for r in range(len(REGIONS)):
        members = np.flatnonzero(region == r)
        members = members[np.argsort(segment[members], kind="stable")]  # inner ring first segment, and so on
        k = np.arange(len(members))
        radius = 0.42 * np.sqrt((k + 0.5) / max(len(members), 1))
        xy[members] = centres[r] + np.column_stack([radius * np.cos(k * golden), radius * np.sin(k * golden)])
    sub = model.graph[nodes][:, nodes]
    rows, cols = sub.nonzero()
    upper = rows < cols
    edges = np.stack([xy[rows[upper]], xy[cols[upper]]], axis=1)
    sample = NetworkSample(nodes, xy, edges, centres)
    model._network_sample = sample
    return sample


def primary_categories(model: DiffusionModel) -> tuple[list[tuple[str, bool]], np.ndarray]:
    """(origin, open) categories of the catalogue and each agent's category index (-1: uses no model yet)."""
    pairs = sorted({(ORIGINS[o], bool(op)) for o, op in zip(model.origin, model.is_open)},
                   key=lambda p: (ORIGINS.index(p[0]), p[1]))
    lookup = {pair: i for i, pair in enumerate(pairs)}
    family_category = np.array([lookup[(ORIGINS[o], bool(op))] for o, op in zip(model.origin, model.is_open)])
    uses = model.work.sum(axis=1) > 0
    return pairs, np.where(uses, family_category[np.argmax(model.work, axis=1)], -1)


def _png(canvas: FigureCanvasAgg) -> bytes:
    """The canvas as PNG; light compression, because encoding time counts on every step and the bytes stay local."""
    width, height = canvas.get_width_height()
    image = PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class View:
    """One chart of one model run. Axes, labels, legends and observed points are drawn once and kept as a
    background image; each step redraws only the artists that change (blitting). A full matplotlib draw costs
    a few hundred milliseconds per chart; this keeps one step of the whole page well under a second."""

    size = (6.4, 5.2)

    def __init__(self, model: DiffusionModel):
        self.fig = Figure(figsize=self.size, dpi=DPI, layout="constrained")
        self.canvas = FigureCanvasAgg(self.fig)
        self.dynamic: list = []
        self.background = None
        self.build(model)

    def animate(self, *artists):
        """Mark artists as redrawn every step (left out of the background)."""
        for artist in artists:
            artist.set_animated(True)
        self.dynamic.extend(artists)
        return artists[0] if len(artists) == 1 else artists

    def build(self, model) -> None:
        raise NotImplementedError

    def update(self, model) -> bool:
        """Set the changing artists to this month's data; True if the background must be redrawn too."""
        raise NotImplementedError

    def render(self, model) -> bytes:
        if self.update(model) or self.background is None:
            self.canvas.draw()
            self.fig.set_layout_engine("none")  # keep the positions found once; layout is the slowest part
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self.background)
        for artist in self.dynamic:
            self.fig.draw_artist(artist)
        return _png(self.canvas)


def _month_numbers(model: DiffusionModel) -> np.ndarray:
    """Matplotlib date numbers of every month of the run, start to end."""
    count = model.end_month - model.start_month + 1
    return mdates.date2num(pd.to_datetime([month_label(model.start_month + i) + "-01" for i in range(count)]))


def _recorded(model: DiffusionModel) -> int:
    """Months recorded so far (all reporters; a step running in another thread may be half-way through)."""
    return min(len(values) for values in model.datacollector.model_vars.values())


def _series(model: DiffusionModel, metric: str, count: int, scale: float = 1.0) -> np.ndarray:
    return np.asarray(model.datacollector.model_vars[metric][:count], dtype=float) * scale


def _time_axis(ax, months: np.ndarray, ylabel: str, xlabel: str = "month"):
    """The whole simulated period on the x axis (charts grow instead of rescaling); returns the line that marks
    the current month."""
    ax.xaxis_date()
    ax.set_xlim(months[0], months[-1])
    ax.xaxis.set_major_locator(mdates.YearLocator(1))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax.axvline(months[0], color="black", linewidth=0.8, linestyle=":")


def _observed(ax, metric: str, colour: str, scale: float = 100.0) -> list:
    """Published figures for one metric (sim.figures' marks, on matplotlib date numbers); returns the artists,
    redrawn each step to stay above the lines."""
    return figures.observed(ax, {metric: colour}, scale, when=mdates.date2num)


def _legend_above(ax, handles, title: str, ncol: int):
    """Title and legend above the plot, where the legend never hides a line."""
    legend = ax.legend(handles=handles, title=title, fontsize=8, title_fontsize=10, loc="lower center",
                       bbox_to_anchor=(0.5, 1.0), ncol=ncol, frameon=False, borderaxespad=0.2, handlelength=2.5,
                       columnspacing=1.2)
    legend.get_title().set_fontweight("normal")


class NetworkView(View):

    def build(self, model):
        self.sample = sample = network_sample(model)
        self.pairs, _ = primary_categories(model)
        ax = self.ax = self.fig.add_subplot()
        ax.add_collection(LineCollection(sample.edges, colors="#555555", linewidths=0.3, alpha=0.12))
        for r, region in enumerate(REGIONS):
            x, y = sample.region_centres[r] * 1.62
            ax.text(x, y, region.replace("_", " "), ha="center", va="center", fontsize=9, fontweight="bold")
        ax.set_xlim(-2.1, 2.1)
        ax.set_ylim(-1.75, 1.75)
        ax.set_aspect("equal")
        ax.set_axis_off()
        styles = [(ORIGIN_COLOURS[o][int(op)], "o" if op else "s", f"{o} {'open-weight' if op else 'closed'}")
                  for o, op in self.pairs]
        self.styles = [(i, *style) for i, style in enumerate(styles)] + [(-1, NO_MODEL_COLOUR, ".", "no model yet")]
        self.points = [ax.scatter([], [], s=9, c=colour, marker=marker, linewidths=0, zorder=2)
                       for _, colour, marker, _ in self.styles]
        handles = [Line2D([], [], linestyle="", marker=marker, color=colour, markersize=6, label=f"{name}: 0,000")
                   for _, colour, marker, name in self.styles]
        self.legend = ax.legend(handles=handles, title="colour and marker: the main model an agent uses (agents shown)",
                                loc="upper center", fontsize=8, title_fontsize=8, ncol=3, bbox_to_anchor=(0.5, 0.0),
                                frameon=False)
        self.title = ax.set_title("Social network", fontsize=11)
        self.animate(*self.points, self.legend, self.title)

    def update(self, model):
        _, category = primary_categories(model)
        category = category[self.sample.nodes]
        for points, text, (i, _, _, name) in zip(self.points, self.legend.get_texts(), self.styles):
            members = category == i
            points.set_offsets(self.sample.xy[members])
            text.set_text(f"{name}: {members.sum():,}")
        self.title.set_text(f"Social network, {model.date}: {len(self.sample.nodes):,} of {len(model.work):,} "
                            "agents")
        return False


class MarketplaceView(View):
    def build(self, model):
        self.months = months = _month_numbers(model)
        top, bottom = self.fig.subplots(2, 1, sharex=True)
        self.lines = {"open": top.plot([], [], color=SERIES_COLOURS["open"], linewidth=2,
                                       label="open weights")[0],
                      "closed": top.plot([], [], color=SERIES_COLOURS["closed"], linewidth=2,
                                         label="closed")[0]}
        observed = _observed(top, "or_share_open", SERIES_COLOURS["open"])
        for origin in ("cn", "us", "eu"):
            self.lines[origin] = bottom.plot([], [], color=SERIES_COLOURS[origin], linewidth=2,
                                             label=f"{origin.upper()}-origin")[0]
            observed += _observed(bottom, f"or_share_{origin}", SERIES_COLOURS[origin])
        observed_key = Line2D([], [], linestyle="", marker="o", color="black", markerfacecolor="white",
                              label="observed (OpenRouter), ± tolerance")
        self.now = []
        for ax, title, xlabel in ((top, "open vs closed", ""), (bottom, "by origin of the model", "month")):
            self.now.append(_time_axis(ax, months, "share of tokens (%)", xlabel))
            ax.set_ylim(0, 100)
            handles, _ = ax.get_legend_handles_labels()
            _legend_above(ax, [*handles, observed_key], f"Marketplace (OpenRouter-like) token share, {title}",
                          ncol=len(handles) + 1)
        self.animate(*self.lines.values(), *self.now, *observed)

    def update(self, model):
        count = _recorded(model)
        x = self.months[:count]
        open_share = _series(model, "or_share_open", count, 100)
        self.lines["open"].set_data(x, open_share)
        self.lines["closed"].set_data(x, 100 - open_share)
        for origin in ("cn", "us", "eu"):
            self.lines[origin].set_data(x, _series(model, f"or_share_{origin}", count, 100))
        for line in self.now:
            line.set_xdata([x[-1], x[-1]])
        return False


class HuggingFaceView(View):
    def build(self, model):
        self.months = months = _month_numbers(model)
        self.axes = top, bottom = self.fig.subplots(2, 1, sharex=True)
        cmap = matplotlib.colormaps["tab10"]
        self.families = [lab.family for lab in model.labs if lab.family.open_weights]
        self.lines = []
        for i, family in enumerate(self.families):
            style = dict(color=cmap(i % 10), linewidth=1.6, linestyle="-" if family.origin == "CN" else "--",
                         label=f"{family.name} ({family.origin})")
            self.lines.append((top.plot([], [], **style)[0], bottom.plot([], [], **style)[0]))
        self.now = [_time_axis(top, months, "downloads (millions)", ""),
                    _time_axis(bottom, months, "derivatives (thousands)")]
        bottom.set_title("Hugging Face: cumulative derivative models (fine-tunes, quantisations)", fontsize=10)
        for ax in self.axes:
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylim(0, 10)
        _legend_above(top, [pair[0] for pair in self.lines], "Hugging Face: cumulative downloads by family "
                      "(solid = Chinese origin)", ncol=4)
        self.animate(*[line for pair in self.lines for line in pair], *self.now)

    def update(self, model):
        count = _recorded(model)
        x = self.months[:count]
        highest = [0.0, 0.0]
        for family, pair in zip(self.families, self.lines):
            for k, (line, kind, scale) in enumerate(zip(pair, ("downloads", "derivatives"), (1e-6, 1e-3))):
                y = _series(model, f"hf_{kind}_cum_{slug(family.name)}", count, scale)
                line.set_data(x, y)
                highest[k] = max(highest[k], float(np.nanmax(y, initial=0.0)))
        for line in self.now:
            line.set_xdata([x[-1], x[-1]])
        rescaled = False
        for ax, top in zip(self.axes, highest):
            if top > ax.get_ylim()[1] / 1.1:  # grow the axis by whole decades, so this happens rarely
                ax.set_ylim(0, 10 ** np.ceil(np.log10(top * 1.1 + 1e-9) + 0.3))
                rescaled = True
        return rescaled


class RegionView(View):

    def build(self, model):
        self.months = months = _month_numbers(model)
        ax = self.fig.add_subplot()
        cmap = matplotlib.colormaps["tab10"]
        self.lines = [ax.plot([], [], color=cmap(i), linewidth=2, label=region.replace("_", " "))[0]
                      for i, region in enumerate(REGIONS)]
        self.now = _time_axis(ax, months, "Chinese-origin share of tokens (%)")
        ax.set_ylim(0, 100)
        _legend_above(ax, self.lines, "Chinese-origin share of all usage, by region of the user", ncol=3)
        self.animate(*self.lines, self.now)

    def update(self, model):
        count = _recorded(model)
        x = self.months[:count]
        for line, region in zip(self.lines, REGIONS):
            line.set_data(x, _series(model, f"share_cn_{region}", count, 100))
        self.now.set_xdata([x[-1], x[-1]])
        return False


VIEWS = {"network": NetworkView, "marketplace": MarketplaceView, "huggingface": HuggingFaceView,
         "regions": RegionView}


def render_views(model: DiffusionModel) -> dict[str, bytes]:
    """Every view of the model's current month as PNG bytes. The charts are built on first use and kept on the
    model, so later calls only redraw what changed."""
    views = getattr(model, "_views", None)
    if views is None:
        views = model._views = {name: view(model) for name, view in VIEWS.items()}
    return {name: view.render(model) for name, view in views.items()}
