"""The browser explorer: a Mesa SolaraViz page for stepping one model run and watching it (`odsim viz`).

Mesa's SolaraViz supplies the controls (step, play, reset, the parameter sliders); the views are drawn with
matplotlib as PNG images (sim/figures/explorer_views.py), so the page needs no JavaScript chart library and
renders with no internet. Parameters start from the calibrated posterior median when calibration/posterior.csv exists, otherwise the hand-set defaults;
the scenario's own parameters and dated shocks come on top; the sliders win over both.

Run it with `odsim viz`, or `solara run sim/app.py`.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import solara  # noqa: E402
from mesa.visualization import Slider, SolaraViz  # noqa: E402
from mesa.visualization.utils import update_counter  # noqa: E402

from sim.core.checks import InputError  # noqa: E402
from sim.core.model import DiffusionModel  # noqa: E402
from sim.core.parameters import PARAMETERS, TRUST_SHARED_REGIONS, defaults  # noqa: E402
from sim.core.population import REGIONS, SEGMENT_NAMES  # noqa: E402
from sim.figures.explorer_views import render_views  # noqa: E402
from sim.inputs.posterior import describe_source, posterior_median  # noqa: E402
from sim.inputs.scenario import SCENARIO_DIR, Scenario, load_scenario  # noqa: E402

DEFAULT_SCENARIO = "baseline"

# The parameters users argue about, as sliders: name -> (label with units, slider step). Labels name the parameter
# in sim/core/parameters.py, where its meaning, range and source are documented.
SLIDERS: dict[str, tuple[str, float]] = {
    "price_sensitivity": ("Price sensitivity (utility per log-unit of cost)", 0.01),
    "cn_lag_months": ("Chinese capability lag behind the frontier (months)", 0.5),
    **{f"trust_cn_{region}": (f"Chinese-origin trust {'offset to the shared level' if region in TRUST_SHARED_REGIONS else 'penalty'}, "
                              f"{region.replace('_', ' ')} (utility)", 0.05) for region in REGIONS},
    "licence_weight": ("Licence weight (utility per unit of licence restriction)", 0.05),
    "peer_weight": ("Peer influence (utility per share of neighbours' work)", 0.05),
}
AGENT_RANGE = (500, 50_000, 500)  # slider min, max, step; the model itself allows more (sim/core/parameters.py)
SEED_RANGE = (0, 999)
NO_SCENARIO = "(none: parameters only)"

# Sliders always show their value under the thumb (Mesa's sliders show it only while dragging) and put the label
# on its own line, so long labels do not squeeze the track.
SLIDER_CSS = """
.v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-input__slider .v-label { flex: 1 0 100%; white-space: normal; height: auto; line-height: 1.3;
    margin-bottom: 2px; font-size: 0.85em; }
.v-input__slider .v-slider { margin-bottom: 16px; }
.v-input__slider .v-slider__thumb-container::after {
    content: attr(aria-valuenow); position: absolute; top: 8px; left: 0; transform: translateX(-50%);
    font-size: 11px; color: #333; white-space: nowrap; }
"""


# --- parameters ---------------------------------------------------------------------------------------------
def slider_start() -> dict[str, Any]:
    """Start values of the sliders: the calibrated posterior median when calibration/posterior.csv exists,
    otherwise the hand-set defaults; rounded to the slider step, so the first model is the one Reset rebuilds."""
    start = {**defaults(), **posterior_median()}
    values = {}
    for name, (_, step) in SLIDERS.items():
        p = PARAMETERS[name]
        values[name] = float(min(p.high, max(p.low, round(round(start[name] / step) * step, 6))))
    values["n_agents"] = int(min(AGENT_RANGE[1], max(AGENT_RANGE[0], start["n_agents"])))
    return values


def scenario_files(folder: Path = SCENARIO_DIR) -> tuple[dict[str, Scenario], dict[str, str]]:
    """Scenarios offered in the picker (name -> Scenario) and the files that failed to load (file -> error)."""
    good, bad = {}, {}
    for path in sorted(folder.glob("*.toml")):
        try:
            good[path.stem] = load_scenario(path)
        except InputError as err:
            bad[path.name] = str(err)
    return good, bad


def default_scenario(names) -> str:
    names = list(names)
    return DEFAULT_SCENARIO if DEFAULT_SCENARIO in names else (names[0] if names else NO_SCENARIO)


class ExploreModel(DiffusionModel):
    """DiffusionModel built from the page's controls: a scenario file from scenarios/ plus slider values.

    Keyword names match the SolaraViz inputs (Mesa checks them against this signature and passes every input on
    Reset). Precedence: defaults < posterior median < the scenario file's [parameters] < sliders; the scenario's
    dated shocks apply on top month by month. A slider left at None takes its start value (slider_start()).
    """

    def __init__(self, scenario_name: str | None = None, seed: int = 0, n_agents: int | None = None,
                 price_sensitivity=None, cn_lag_months=None, trust_cn_north_america=None, trust_cn_europe=None,
                 trust_cn_china=None, trust_cn_asia_pacific=None, trust_cn_global_south=None,
                 trust_cn_restricted=None, licence_weight=None, peer_weight=None):
        given = {k: v for k, v in locals().items() if k in SLIDERS or k == "n_agents"}
        start = slider_start()
        sliders = {k: start[k] if v is None else v for k, v in given.items()}
        sliders["n_agents"] = int(sliders["n_agents"])
        if scenario_name is None:
            scenario_name = default_scenario(p.stem for p in SCENARIO_DIR.glob("*.toml"))
        scenario = (Scenario(name=NO_SCENARIO) if scenario_name == NO_SCENARIO
                    else load_scenario(SCENARIO_DIR / f"{scenario_name}.toml"))
        self.scenario_name = scenario_name
        self.scenario_description = " ".join(scenario.description.split())
        # Scenario values the sliders replace, so the page can say so.
        self.overridden = {k: v for k, v in scenario.parameters.items() if k in sliders and v != sliders[k]}
        params = {**posterior_median(), **scenario.parameters, **sliders}
        super().__init__(rng=int(seed), shocks=scenario.shocks, **params)
        self.seed = int(seed)

    @property
    def total_steps(self) -> int:
        return self.end_month - self.start_month


def model_params() -> dict[str, Any]:
    """The SolaraViz inputs: scenario picker, sliders at their start values, agents and seed."""
    start = slider_start()
    names = list(scenario_files()[0]) or [NO_SCENARIO]
    params: dict[str, Any] = {
        "scenario_name": {"type": "Select", "value": default_scenario(names), "values": names,
                          "label": "Scenario (files in scenarios/)"},
    }
    for name, (label, step) in SLIDERS.items():
        p = PARAMETERS[name]
        params[name] = Slider(label, value=start[name], min=float(p.low), max=float(p.high), step=step, dtype=float)
    low, high, step = AGENT_RANGE
    params["n_agents"] = Slider("Number of agents", value=start["n_agents"], min=low, max=high, step=step, dtype=int)
    params["seed"] = Slider("Seed (`odsim run` member k uses seed k)", value=0, min=SEED_RANGE[0], max=SEED_RANGE[1],
                            step=1, dtype=int)
    return params


# --- the page -------------------------------------------------------------------------------------------------
CAPTIONS = {
    "network": ("Social network: who uses which kind of model",
                f"Each dot is a sampled agent in its region's disc; rings are segments ({SEGMENT_NAMES[0]} inside, "
                f"{SEGMENT_NAMES[-1].replace('_', ' ')} outside); grey lines are word-of-mouth ties."),
    "marketplace": ("Marketplace shares",
                    "Token shares among agents that route through a marketplace like OpenRouter; black-edged marks "
                    "are published figures (calibration/targets.toml)."),
    "huggingface": ("Hugging Face downloads and derivatives",
                    "Open-weight families only, cumulative since the start of the run (log scale)."),
    "regions": ("Chinese-origin share by region",
                "Share of all tokens served by Chinese-origin models, by the region of the user."),
}


@solara.component
def Dashboard(model: ExploreModel):
    """Current month, the four views and the parameters in force; redrawn whenever Mesa steps or resets."""
    update_counter.get()  # Mesa bumps this counter after each step
    images = solara.use_memo(lambda: render_views(model), [model, model.month])
    done = model.month - model.start_month
    with solara.Column(style={"padding": "8px"}):
        with solara.Card(classes=["odsim-header"], margin=0):
            solara.HTML(tag="div", unsafe_innerHTML=(
                f"<span style='font-size:1.6em;font-weight:600' class='odsim-month'>{model.date}</span>"
                f"<span style='margin-left:1em'>month {done} of {model.total_steps}"
                f"{' (end of run)' if not model.running else ''}</span>"
                f"<span style='margin-left:1em'>scenario <b class='odsim-scenario'>{model.scenario_name}</b></span>"
                f"<div style='font-size:0.9em;color:#555'>{html.escape(model.scenario_description)}</div>"))
        with solara.ColumnsResponsive(default=12, large=6):
            for name, (title, caption) in CAPTIONS.items():
                with solara.Card(title, subtitle=caption, classes=["odsim-chart", f"odsim-chart-{name}"], margin=0):
                    solara.Image(images[name], width="100%")
        ParametersCard(model)


@solara.component
def ParametersCard(model: ExploreModel):
    rows = "".join(
        f"<tr><td>{SLIDERS[name][0]}</td><td class='odsim-param-{name}' style='text-align:right'>"
        f"{model.base_params[name]:g}</td><td style='text-align:right'>{model.params[name]:g}</td></tr>"
        for name in SLIDERS)
    notes = "".join(f"<li>{html.escape(shock.describe())}</li>" for shock in model.shocks)
    overridden = ", ".join(f"{k} (file: {v:g})" for k, v in model.overridden.items())
    with solara.Card("Parameters of this run", classes=["odsim-parameters"], margin=0):
        solara.HTML(tag="div", unsafe_innerHTML=(
            f"<p>Source: {describe_source()}. Agents: <span class='odsim-agents'>{len(model.work):,}</span>; "
            f"seed {model.seed}. Change a slider, then press Reset to rebuild the model.</p>"
            + (f"<p>Sliders replace the scenario file's values for: {overridden}</p>" if overridden else "")
            + "<table style='width:100%;font-size:0.9em'><tr><th style='text-align:left'>parameter</th>"
            "<th style='text-align:right'>set</th><th style='text-align:right'>in force this month</th></tr>"
            + rows + "</table>"
            + (f"<p>Scenario shocks:</p><ul>{notes}</ul>" if notes else "")))


@solara.component
def Page():
    """One model per browser session, so two people exploring at once do not step each other's runs."""
    model = solara.use_reactive(solara.use_memo(ExploreModel, []))
    params = solara.use_memo(model_params, [])
    broken = solara.use_memo(lambda: scenario_files()[1], [])
    solara.Style(SLIDER_CSS)
    SolaraViz(model, components=[], model_params=params, play_interval=150,
              name="odsim: open-weight and closed AI models, 2023-2030")
    for file, message in broken.items():
        solara.Warning(f"Not offered in the scenario picker: {message}")
    Dashboard(model.value)


page = Page()
