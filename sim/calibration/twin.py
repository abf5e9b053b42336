"""The aggregate logit twin of odsim: the model's own utility and choice rule with the agent-based parts removed.

The twin is DiffusionModel run with `population = "representative"` and a few fixed settings (TWIN_FIXED), so it
shares every utility term, the release catalogue, the labs and the observation model with odsim, and differs only
in what the agent-based model adds on top of a logit:

  - one representative agent per (region, segment) cell and marketplace channel, with the cell's mean traits
    (sim/core/population.py, build_representative_population): no heterogeneity between agents;
  - every agent knows every released family (no awareness process, no word of mouth) and peers are population
    means (complete mixing): no network;
  - every agent re-evaluates every month, and splits its work by the plain logit (no workloads, no switching cost,
    no minimum share): the shares are the logit's, deterministic given the parameters and the releases.

It is fitted like the model (ABC-SMC on the same distance, sim/calibration/abc_smc.py, run_abc) but on its own few parameters
(TWIN_PARAMETERS: the utility weights, the Chinese-origin trust penalties' shared level, routing and the Hugging
Face observation terms; priors as the model's), and forecasts from posterior draws run on fresh seeds (after a
hindcast's cutoff the labs' releases are random) plus the figure error the baselines assume
(sim/scoring.figure_draws): an equal-information baseline in the hindcast table (sim/calibration/hindcast.py). If odsim does not
beat it, its network and heterogeneity are not earning their keep.
"""

from __future__ import annotations

from dataclasses import replace

from sim.calibration.calibration_config import Config, RunSettings

TWIN = "aggregate logit twin"
TWIN_FIXED = (("population", "representative"), ("network", "complete"), ("workload_scale", 0.0),
              ("min_share", 0.0), ("switch_rate_developer", 1.0), ("switch_rate_firm", 1.0))
# Its parameters: what the logit's utility and the observation model need (the observation scales only where a
# config samples them instead of solving them); the awareness, re-evaluation, habit and regional-offset parameters
# have nothing to act on in the twin, or would give it the model's regional heterogeneity.
TWIN_PARAMETERS = ("price_sensitivity", "capability_weight", "quality_weight", "licence_weight", "openness_weight",
                   "ecosystem_weight", "peer_weight", "trust_cn_shared", "trust_us_china", "marketplace_routing",
                   "hf_growth", "sizes_exponent", "downloads_scale", "derivatives_scale")


def twin_config(config: Config) -> Config:
    """The calibration settings with the twin's priors only (the model's priors for those parameters)."""
    return replace(config, priors=tuple(p for p in config.priors if p.name in TWIN_PARAMETERS))


def twin_run(run: RunSettings) -> RunSettings:
    """The model runs of `run` (same end, seeds and fixed settings, e.g. a hindcast's catalogue cutoff) as the twin."""
    return replace(run, fixed=tuple(run.fixed) + TWIN_FIXED)
