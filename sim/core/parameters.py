"""Every model parameter in one table: default, allowed range, meaning and where its value comes from.

The table is the single source for validation (scenario files, sweeps, the command line), for calibration priors
(the `behavioural` ones) and for the browser sliders. `source` says whether a default is a public figure
(with its id in calibration/targets.toml or the data notes), derived from the release catalogue, or an
ASSUMPTION: then the range is the span we consider plausible and sweeps or calibration explore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.core.calendar import parse_month
from sim.core.catalogue import last_release_month
from sim.core.population import REGIONS


MONTHS = ("month", "optional month")
CUTOFF_EARLIEST = "2024-01"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    low: Any = None  # inclusive bounds for numbers; None for text parameters
    high: Any = None
    doc: str = ""
    source: str = "ASSUMPTION"
    behavioural: bool = False  # fitted by calibration
    kind: type = float
    allowed: tuple[str, ...] | str = ()  # text parameters: the allowed values, "month" for a YYYY-MM label (within
    #                                       low..high when given), or "optional month" for one or "" (none)
    drawn: tuple[float, float] | None = None  # projection assumption: each run draws it uniformly in this range

    def describe_allowed(self) -> str:
        """What the parameter accepts, in words (for messages and `odsim params`)."""
        if self.kind is bool:
            return "true or false"
        if self.allowed in MONTHS:
            span = f" in {self.low}..{self.high}" if self.low else ""
            return f"a month YYYY-MM{span}" + (" or empty (none)" if self.allowed == "optional month" else "")
        if self.allowed:
            return " or ".join(repr(v) for v in self.allowed)
        return f"a {'whole ' if self.kind is int else ''}number in [{self.low}, {self.high}]"


def _p(name, default, low, high, doc, source="ASSUMPTION", behavioural=False, kind=float, drawn=None):
    return Parameter(name, default, low, high, doc, source, behavioural, kind, drawn=drawn)


_TABLE = [
    # --- run structure -------------------------------------------------------------------------------------
    _p("n_agents", 5000, 50, 5_000_000, "simulated agents; each stands for a weight of real token demand",
       "structural", kind=int),
    Parameter("start", "2023-01", doc="first simulated month (YYYY-MM)", source="structural", kind=str,
              allowed="month"),
    Parameter("end", "2030-12", doc="last simulated month (YYYY-MM)", source="structural", kind=str,
              allowed="month"),
    Parameter("network", "clustered", doc="'clustered' social graph, or 'complete' mixing (peer terms use "
              "population averages)", source="structural", kind=str, allowed=("clustered", "complete")),
    Parameter("population", "agents", doc="'agents': heterogeneous agents drawn per (region, segment) cell; "
              "'representative': the aggregate logit twin (sim/calibration/twin.py): one agent per cell and marketplace channel "
              "with the cell's mean traits, aware of every released family (no word of mouth)",
              source="structural", kind=str, allowed=("agents", "representative")),
    _p("mean_degree", 8.0, 1.0, 50.0, "average number of word-of-mouth ties per agent"),
    _p("homophily_region", 0.8, 0.0, 1.0, "share of an agent's ties inside its own region"),
    _p("homophily_segment", 0.5, 0.0, 1.0, "share of same-region ties that are also in the same segment"),
    Parameter("draw_assumptions", True, doc="each run draws its uncertain inputs from their documented ranges on its "
              "own stream: imputed capabilities of unrated releases and the projection assumptions (parameters with "
              "a `drawn` range) that the run is not given explicitly; off: central values (docs/ODD.md 7.1)",
              source="structural", kind=bool),
    Parameter("catalogue_cutoff", "", CUTOFF_EARLIEST, last_release_month(),
              doc="hindcasts: labs follow the release catalogue only for releases dated up to this month and "
              "release by their own stochastic process from then on (sim/core/agents.py Lab); empty: the whole "
              "catalogue. From 2024-01: a hindcast needs a year of catalogue to fit the closed frontier's trend",
              source="structural", kind=str, allowed="optional month"),
    Parameter("choice", True, doc="agents choose by utility; off: they split work evenly over the families "
              "they know (for checking the awareness model alone)", source="structural", kind=bool),
    # --- demand: choice weights (calibrated) ---------------------------------------------------------------
    _p("price_sensitivity", 0.3, 0.05, 4.0, "multiplies each segment's weight on log cost", behavioural=True),
    _p("capability_weight", 3.0, 0.1, 6.0, "weight on the capability shortfall below an agent's need",
       behavioural=True),
    _p("quality_weight", 0.0, 0.0, 3.0, "weight on every 5 ECI points behind the frontier, whatever the agent's "
       "need: the better model is preferred even when a weaker one would serve (docs/ODD.md 7.4)", behavioural=True),
    _p("licence_weight", 0.8, 0.0, 4.0, "weight on licence restrictions (conditional, research-only)",
       behavioural=True),
    _p("openness_weight", 0.2, 0.0, 4.0, "value of open weights for agents that need data control and tuning",
       behavioural=True),
    _p("ecosystem_weight", 0.3, 0.0, 4.0, "weight on a family's ecosystem (0 to 1: builder-months on it, "
       "saturating; docs/ODD.md 7.4)", behavioural=True),
    _p("ecosystem_half_months", 12.0, 1.0, 60.0, "months of all builders' work on a family at which its ecosystem "
       "is half built. ASSUMPTION (docs/ODD.md 7.4)"),
    Parameter("ecosystem_form", "saturating", doc="'saturating': builder-months on open and closed families alike, "
              "bounded; 'open_log': the former log of derivatives, open families only (for ablations)",
              source="structural", kind=str, allowed=("saturating", "open_log")),
    Parameter("price_tiers", True, doc="each family offers a flagship and, where its catalogue has cheaper lines, "
              "a standard and an efficient tier, chosen within the family by a log-sum (docs/ODD.md 7.9); false: "
              "one tier per family, its most capable release (for ablations)", source="structural", kind=bool),
    Parameter("standard_tier", True, doc="with price_tiers, the standard line (Sonnet, GPT-4o / 4.1 / 5, Gemini Pro) "
              "is a tier between the flagship and the efficient tier; false: the two-tier model, flagship and "
              "efficient only (for ablations; docs/ODD.md 7.9)", source="structural", kind=bool),
    _p("peer_weight", 1.5, 0.0, 6.0, "weight on the share of neighbours' work done with a family",
       behavioural=True),
    _p("trust_cn_shared", 0.0, 0.0, 6.0, "utility penalty for Chinese-origin models shared by North America, "
       "Europe, Asia-Pacific and the Global South; each adds its own offset (trust_cn_<region>)", behavioural=True),
    _p("trust_cn_north_america", 1.5, -3.0, 6.0, "North America's offset to trust_cn_shared", behavioural=True),
    _p("trust_cn_europe", 1.0, -3.0, 6.0, "same, Europe", behavioural=True),
    _p("trust_cn_china", 0.0, 0.0, 6.0, "utility penalty for Chinese-origin models in China (not shared)"),
    _p("trust_cn_asia_pacific", 0.6, -3.0, 6.0, "same offset, Asia-Pacific (ex-China)", behavioural=True),
    _p("trust_cn_global_south", 0.2, -3.0, 6.0, "same offset, Global South", behavioural=True),
    _p("trust_cn_restricted", 0.0, 0.0, 6.0, "utility penalty for Chinese-origin models in restricted markets "
       "(not shared)"),
    _p("trust_us_china", 0.5, 0.0, 6.0, "utility penalty for US-origin open models in China"),
    _p("regulated_trust_multiplier", 2.0, 1.0, 5.0, "how much more regulated firms (with firm_origin_trust, "
       "all firms) weigh origin trust than developers"),
    Parameter("firm_origin_trust", True, doc="every firm (SME, enterprise, regulated) weighs origin trust "
              "regulated_trust_multiplier times as much as a developer (procurement, security and compliance "
              "review; ENT5; docs/ODD.md 7.4); false: regulated firms only, the former model (for ablations)",
              source="ASSUMPTION: ENT5 shows security and regulatory concern is general among organisations, not "
              "how much it weighs on origin; range: unregulated firms weigh it 1x (false) to the multiplier (true)",
              kind=bool),
    _p("min_share", 0.05, 0.0, 0.3, "without workloads (workload_scale 0): a family below this share of an "
       "agent's work is dropped (multi-homing over a few families, cf. ENT4)"),
    _p("workload_scale", 1.0, 0.0, 3.0, "multiplies each segment's workloads per use (sim/core/population.py: "
       "hobbyist 1 ... enterprise 10), each run on one family chosen by logit; 0 = the former continuous logit "
       "split with min_share. ASSUMPTION; ENT4 (81% of large enterprises run >= 3 families) and Fradkin "
       "(multi-homing common among apps) are what it must reproduce (docs/ODD.md 7.4)"),
    _p("switching_cost", 1.0, 0.0, 5.0, "utility bonus of the family a workload already runs on when it is "
       "re-evaluated (habit, integration work); 0 = none. ASSUMPTION, range from OR14 (month-1 churn 60-70%, "
       "early cohorts keep ~40% at month 5) and OR12 vs the NBER elasticity (a 10% cut raises usage 0.5-0.7% in "
       "the short run against about -1.1 across providers); needs workloads (docs/ODD.md 7.4)"),
    _p("task_fit_sd", 0.0, 0.0, 8.0, "standard deviation (ECI points) of a workload's persistent fit to a family: "
       "each workload sees a family's capability as its ECI plus a normal deviation fixed per agent, workload and "
       "family (task-specific capability; needs workloads; docs/ODD.md 7.4). Catalogue: benchmarks' pooled residual "
       "sd against ECI 3.1 (90% bootstrap 2.65-3.33; tools/task_fit_estimate.py), an upper end as it includes "
       "measurement noise. ASSUMPTION: range 1.5-3.3 (half the estimate to its upper bound)"),
    # --- demand: awareness and switching (calibrated) ------------------------------------------------------
    _p("awareness_external", 0.05, 0.0, 0.3, "monthly chance to learn of a released family from media (Bass p)",
       behavioural=True),
    _p("awareness_release", 0.10, 0.0, 0.8, "chance to learn of a family in the month it releases a model that makes "
       "headlines (see headline_gap)",
       behavioural=True),
    _p("headline_gap", 5.0, 0.0, 15.0, "a release makes world news (`awareness_release`) only within this "
       "many ECI points of the frontier (docs/ODD.md 7.3)", behavioural=True),
    Parameter("headline_filter", True, doc="only releases within `headline_gap` of the frontier make world news; "
              "off: every release does (the model before that mechanism; for ablations, sim/calibration/ablation.py)",
              source="structural", kind=bool),
    _p("awareness_internal", 0.4, 0.0, 1.0, "chance per month scaled by the share of neighbours using the "
       "family (Bass q)", behavioural=True),
    _p("initial_awareness", 0.6, 0.0, 1.0, "share of agents who know the incumbent (GPT) at the start"),
    _p("switch_rate_developer", 0.25, 0.01, 1.0, "monthly share of developers who re-evaluate their mix",
       behavioural=True),
    _p("switch_rate_firm", 0.06, 0.005, 1.0, "monthly share of firms who re-evaluate (procurement cycles)",
       behavioural=True),
    _p("marketplace_routing", 1.0, 0.05, 4.0, "multiplies each segment's chance of routing through a "
       "marketplace like OpenRouter", behavioural=True),
    _p("marketplace_home_share", 0.0, 0.0, 1.0, "share of what marketplace users in China and restricted "
       "markets can buy directly (domestic models) that they still route through the marketplace; they come to it "
       "for the US closed APIs not sold there. ASSUMPTION (docs/ODD.md 7.6)"),
    # --- builders and Hugging Face (calibrated scale factors) ----------------------------------------------
    _p("derivatives_scale", 6e5, 100.0, 5e6, "new derivatives a month if every builder worked only with one "
       "permissively licensed single-size family, in 2025-01 (see hf_growth); an observation scale, solved for each "
       "parameter set in calibration (sim/inputs/targets.py)"),
    _p("downloads_scale", 3.5e8, 1e5, 1e10, "downloads a month if all demand were on one single-size open "
       "family, in 2025-01 (see hf_growth); an observation scale, solved for each parameter set in calibration"),
    _p("hf_growth", 3.0, 1.0, 8.0, "yearly growth factor of Hugging Face activity (downloads and derivative "
       "uploads per unit of open-model use; 1 = none) up to 2026-01, the end of the data; the scales above are "
       "its level in 2025-01. ASSUMPTION, motivated by HF7 (< 50M -> > 1B cumulative open downloads, 2024-01 to "
       "2025-10)", behavioural=True),
    _p("sizes_exponent", 0.5, 0.0, 1.5, "elasticity of downloads and derivatives to the number of sizes offered"),
    # --- supply: capability and prices ---------------------------------------------------------------------
    _p("frontier_growth", 11.7, 2.0, 25.0, "closed-frontier ECI points per year after the catalogue ends",
       "catalogue: least-squares slope of the best closed ECI 2023-2026 (11.7; 10.8-13.4 by estimator, standard "
       "errors 0.7-1.0, docs/ODD.md 7.11); drawn 9.5-14, that span with its error (faster or slower is a scenario)",
       drawn=(9.5, 14.0)),
    _p("frontier_shift", 0.0, -20.0, 40.0, "extra ECI points added to the closed frontier (scenario shocks)"),
    _p("frontier_lag_months", 1.0, 0.0, 12.0, "months US closed labs' new releases trail the frontier trend",
       "catalogue: US closed flagships of 2024-2025 trail the trend by 2.6 months on average, each family's best "
       "by 4.2 (90% quantile 8.7; docs/ODD.md 7.12); drawn 0-9", drawn=(0.0, 9.0)),
    _p("cn_lag_months", 7.0, 0.0, 36.0, "months Chinese labs' new releases trail the frontier",
       "CAP3: average Chinese lag 7 months (min 4, max 14); drawn in that range", drawn=(4.0, 14.0)),
    _p("us_open_lag_months", 9.0, 0.0, 36.0, "months US open-weight releases trail the frontier",
       drawn=(3.0, 18.0)),
    _p("eu_lag_months", 9.0, 0.0, 36.0, "months European releases trail the frontier",
       "catalogue: Mistral's rated flagships trail the trend by 7.9 and 12.2 months, its best by 26 in 2026-01; "
       "CAP7: the open models in the global top 15 are all Chinese (docs/ODD.md 7.12); drawn 8-18", drawn=(8.0, 18.0)),
    _p("capability_noise", 3.9, 0.0, 8.0, "standard deviation (ECI) of a new release around its lab's trend",
       "catalogue: pooled within-family spread of releases around their family's trend, 3.9 ECI (90 releases, 13 "
       "families; docs/ODD.md 7.11); drawn 2.5-5, ASSUMPTION: the estimate's uncertainty", drawn=(2.5, 5.0)),
    _p("price_decline_closed", 0.25, 0.0, 0.9, "yearly fractional fall of closed families' prices after 2026-01",
       "catalogue (tools/price_decline_estimate.py, docs/ODD.md 7.12): list prices along a family's line fell 0.25 a "
       "year, pooled over both sides (90% bootstrap -0.02 to 0.40 over families, -0.01 to 0.43 over releases); "
       "closed lines 0.24, open 0.29, a gap the data cannot tell from zero, so both sides share one range: drawn "
       "0-0.45, each side on its own (the gap's interval is wider than independent draws give)", drawn=(0.0, 0.45)),
    _p("price_decline_open", 0.25, 0.0, 0.9, "yearly fractional fall of open families' prices after 2026-01",
       "catalogue, as price_decline_closed: drawn 0-0.45", drawn=(0.0, 0.45)),
    _p("release_pace", 1.0, 0.1, 4.0, "multiplies every lab's 2024-2025 release rate after 2026-01 "
       "(ASSUMPTION: labs keep their recent pace within a factor 1.5 either way)", drawn=(2 / 3, 1.5)),
    _p("price_decline_factor", 1.0, 0.0, 3.0, "multiplies both yearly price declines after 2026-01 (scenario shocks)"),
    # --- Hugging Face background: downloads of models outside the named families (observation only) ---------
    # Drawn per run (carried as uncertainty, like the projection assumptions above; listed after them so that
    # their draws keep their values). They reach no agent's choice: sim/core/observe.py only (docs/ODD.md 7.8).
    _p("hf_background_share", 0.8, 0.0, 0.99, "share of all Hugging Face downloads that are of models outside "
       "the named families (small and non-LLM models, other developers' LLMs), held at this share of every month's "
       "downloads. ASSUMPTION, range 0.6-0.95: HF1 gives China 17.1% and the USA 15.8% of all downloads while the "
       "named families are Chinese or US but for Mistral, a minority of them (OR7: a ninth of the four largest open "
       "families' tokens), so they are at most about 0.4 of all (lower bound); they are "
       "the most-downloaded LLM families (HF2, HF3) among downloads dominated by small models (calibration-figures "
       "section 2), taken as at least 0.05 of all (upper bound)", drawn=(0.6, 0.95)),
    _p("hf_background_cn_us", 0.125, 0.0, 0.5, "share of the background's downloads by Chinese developers, and "
       "the same share by US developers (the rest: everyone else). ASSUMPTION, range 0.05-0.2: the upper bound "
       "keeps either country's background within its HF1 share (0.158 / 0.8); the lower bound, a twentieth of the "
       "rest, is a judgement (both countries' labs publish many small models); equal for the two countries, as no "
       "figure separates them outside the named families and HF1 puts them 1.3 points apart overall",
       drawn=(0.05, 0.2)),
]

PARAMETERS: dict[str, Parameter] = {p.name: p for p in _TABLE}
assert all(f"trust_cn_{region}" in PARAMETERS for region in REGIONS)
TRUST_SHARED_REGIONS = ("north_america", "europe", "asia_pacific", "global_south")  # add trust_cn_shared

BEHAVIOURAL = [p.name for p in _TABLE if p.behavioural]
PROJECTION_ASSUMPTIONS = [p.name for p in _TABLE if p.drawn]


def defaults() -> dict[str, Any]:
    return {name: p.default for name, p in PARAMETERS.items()}


def check_value(name: str, value: Any) -> Any:
    """Return `value` converted to the parameter's type, or raise ValueError saying what is allowed (the table's
    kind, range and allowed values decide; no parameter is special-cased here)."""
    if name not in PARAMETERS:
        raise KeyError(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")
    p = PARAMETERS[name]
    if p.kind is bool:
        ok = isinstance(value, bool)
    elif p.kind is str:
        ok = isinstance(value, str) and (_is_month(value, p) if p.allowed in MONTHS else
                                         not p.allowed or value in p.allowed)
    else:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high
              and (p.kind is not int or int(value) == value))
    if not ok:
        raise ValueError(f"{name} must be {p.describe_allowed()}, got {value!r}")
    return p.kind(value)


def _is_month(text: str, p: Parameter) -> bool:
    if text == "" and p.allowed == "optional month":
        return True
    try:
        month = len(text) == 7 and parse_month(text) >= 0
    except ValueError:
        return False
    return month and (not p.low or p.low <= text <= p.high)


def resolve(overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with validated overrides; raises KeyError/ValueError naming the offending key."""
    params = defaults()
    for name, value in overrides.items():
        params[name] = check_value(name, value)
    if parse_month(params["end"]) < parse_month(params["start"]):
        raise ValueError(f"end ({params['end']}) is before start ({params['start']})")
    return params
