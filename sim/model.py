"""DiffusionModel: labs release and price model families; developers and firms learn of them and choose.

One step is one month. Order within a step (docs/ODD.md, "Process overview"):
  1. parameters in force this month (scenario shocks applied);
  2. labs act: catalogue releases, then stochastic releases and price declines;
  3. awareness spreads (Bass: media and releases, plus neighbours who use a family);
  4. a share of agents re-evaluate and split their work over the families they know by a logit over utility;
  5. builders publish derivatives, open families collect downloads;
  6. the observation model measures what public sources would report, and the DataCollector records it.
"""

from __future__ import annotations

import functools
from typing import Any

import mesa
import networkx as nx
import numpy as np
import scipy.sparse as sp
from mesa.discrete_space import Network

from sim import observe
from sim.agents import LICENCE_DERIVATIVE_FACTOR, LICENCE_PENALTY, Developer, Firm, Lab
from sim.calendar import month_label, parse_month
from sim.catalogue import ORIGINS, families, releases
from sim.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS, TRUST_SHARED_REGIONS, resolve
from sim.population import (NO_US_CLOSED, REGION_MARKETPLACE, REGIONS, SEGMENT_NAMES, SEGMENTS, build_network,
                            build_population)
from sim.shocks import Shock, effective_parameters, regional_price_factors

HF_REFERENCE_MONTH = parse_month("2025-01")  # month in which `hf_growth` leaves the scales unchanged
HF_GROWTH_END = parse_month("2026-01")  # last month of the calibration data: no growth figure beyond it
CAPABILITY_SCALE = 5.0  # ECI points of shortfall below an agent's need that cost one unit of `capability_weight`


class DiffusionModel(mesa.Model):
    """Monthly diffusion of model families among weighted developer and firm agents.

    Takes flat keyword parameters (sim.parameters.PARAMETERS; any not given take their default) plus `rng`
    and an optional tuple of scenario `shocks`, so `mesa.batch_run` can drive it.
    """

    def __init__(self, rng=None, shocks: tuple[Shock, ...] = (), **parameters: Any):
        super().__init__(rng=rng)
        self.base_params = resolve(parameters)
        self.shocks = tuple(shocks)
        self.start_month = parse_month(self.base_params["start"])
        self.end_month = parse_month(self.base_params["end"])
        self.month = self.start_month
        n_families = len(families())
        streams = self.rng.spawn(6 + n_families)  # spawned children are fixed by index: adding one kept the rest
        # streams[4] drew Poisson derivative counts; now unused, kept so every other stream keeps its index.
        self._awareness_rng, self._switch_rng, pop_rng, net_rng = streams[:4]
        self.release_capability = self._draw_uncertain_inputs(streams[5 + n_families], set(parameters))
        self.params = effective_parameters(self.base_params, self.shocks, self.month)

        # Supply: one Lab per family.
        self.families = families()
        self.family_names = [f.name for f in self.families]
        self.labs = [Lab(self, f, s) for f, s in zip(self.families, streams[5:5 + n_families])]
        self.is_open = np.array([f.open_weights for f in self.families])
        self.origin = np.array([ORIGINS.index(f.origin) for f in self.families])
        self.sizes_factor = np.array([f.sizes for f in self.families], float) ** self.base_params["sizes_exponent"]

        # Demand: weighted agents, their network and their state.
        n = self.base_params["n_agents"]
        self.population = pop = build_population(n, pop_rng)
        self.graph = build_network(pop, self.base_params["mean_degree"], self.base_params["homophily_region"],
                                   self.base_params["homophily_segment"], net_rng)
        self.inverse_degree = (1 / np.maximum(np.asarray(self.graph.sum(axis=1)).ravel(), 1.0)).astype(np.float32)
        self.cell = pop.region * len(SEGMENTS) + pop.segment
        self.log_selfhost_discount = np.log(np.minimum(1.0, pop.selfhost_factor))  # <= 0: cheaper to self-host
        self.aware = np.zeros((n, n_families), dtype=bool)
        self.work = np.zeros((n, n_families), np.float32)  # single precision: shares need no more, and it is faster
        self.active = np.zeros(n, dtype=bool)  # uses at least one family
        self.availability = self.marketplace_availability = None
        self._neighbour_sums = np.zeros((n, 2 * n_families), np.float32)  # graph @ [uses f, work share on f]
        self.uses_marketplace = np.zeros(n, dtype=bool)
        self.new_derivatives = np.zeros(n_families)
        self.builder_months = np.zeros(n_families)  # months of all builders' work on each family, summed
        for i in range(n):
            (Firm if pop.is_firm[i] else Developer)(self, i)
        self._space = None
        self._group_weights = None

        self.datacollector = mesa.DataCollector(model_reporters=observe.model_reporters())
        self._advance()
        self.datacollector.collect(self)

    def _draw_uncertain_inputs(self, rng: np.random.Generator, given: set[str]) -> dict:
        """Draw this run's uncertain inputs on their own stream (a fixed number of draws, so member k gets the same
        draws in every scenario): each catalogue release's capability, rated or imputed with its standard deviation
        (catalogue.py), and each projection assumption not given explicitly, uniform in its documented range
        (sim/parameters.py). With `draw_assumptions` off, central values. Returns release -> capability. A hindcast
        draws for the releases known by its `catalogue_cutoff` only."""
        catalogue = releases(self.base_params["catalogue_cutoff"] or None)
        z = rng.standard_normal(len(catalogue))
        u = rng.random(len(PROJECTION_ASSUMPTIONS))
        if not self.base_params["draw_assumptions"]:
            return {r: r.capability for r in catalogue}
        for name, share in zip(PROJECTION_ASSUMPTIONS, u):
            if name not in given:
                low, high = PARAMETERS[name].drawn
                self.base_params[name] = low + share * (high - low)
        return {r: r.capability + r.capability_sd * draw for r, draw in zip(catalogue, z)}

    # --- Mesa interface ---------------------------------------------------------------------------------------
    @property
    def date(self) -> str:
        return month_label(self.month)

    @property
    def space(self) -> Network:
        """The social graph as a Mesa network space with every agent on its node; built on first use because
        Mesa cells for a million agents cost gigabytes that the array-based step never needs."""
        if self._space is None:
            graph = nx.from_scipy_sparse_array(self.graph)
            self._space = Network(graph, capacity=1, random=self.random, layout=None)
            for agent in self.users:
                agent.cell = self._space[agent.index]
        return self._space

    @functools.cached_property
    def users(self) -> list:
        """Developers and firms in index order."""
        users = sorted(self.agents_by_type[Developer] | self.agents_by_type[Firm], key=lambda a: a.index)
        return list(users)

    def step(self) -> None:
        if self.month >= self.end_month:
            self.running = False
            return
        self.month += 1
        self._advance()
        self.datacollector.collect(self)
        if self.month >= self.end_month:
            self.running = False

    # --- one month --------------------------------------------------------------------------------------------
    def _advance(self) -> None:
        self.params = effective_parameters(self.base_params, self.shocks, self.month)
        self.agents_by_type[Lab].do("step")
        self._update_family_arrays()
        self.availability, self.marketplace_availability = self._availability()  # (region, segment, family)
        self._spread_awareness()
        self._choose()
        self.usage = self._usage_by_group()
        self._publish_and_download()
        self.observations = observe.measure(self)

    def _update_family_arrays(self) -> None:
        labs = self.labs
        self.released = np.array([lab.released for lab in labs])
        self.released_now = np.array([lab.released_this_month for lab in labs])
        self.capability = np.nan_to_num(np.array([lab.capability for lab in labs]), nan=0.0)
        self.price = np.nan_to_num(np.array([lab.price for lab in labs]), nan=1.0)
        # Region x family price: equal to `price` unless a scenario changes a price in some regions only.
        self.price_by_region = self.price * regional_price_factors(self.shocks, self.family_names, self.month)
        self.licence = [lab.licence for lab in labs]
        self.frontier = float(self.capability[self.released].max()) if self.released.any() else 0.0
        self.derivatives_cum = np.array([lab.derivatives_cum for lab in labs])

    def available(self) -> np.ndarray:
        """Whether each agent may use each family (through a marketplace if it routes through one): one gather
        from a table whose first half is the direct (region, segment) rows and whose second half the resold."""
        n_families = len(self.families)
        table = np.concatenate([self.availability.reshape(-1, n_families),
                                self.marketplace_availability.reshape(-1, n_families)])
        return table[self.cell + self.uses_marketplace * (len(table) // 2)]

    def _availability(self) -> tuple[np.ndarray, np.ndarray]:
        """Which (region, segment) cells may use which family, directly and through a marketplace: released and
        not banned by a scenario; directly, US closed APIs are not sold in NO_US_CLOSED regions, but a
        marketplace resells them there (OR15: China is 6% of OpenRouter spend)."""
        cell_mask = np.broadcast_to(self.released, (len(REGIONS), len(SEGMENTS), len(self.families))).copy()
        for shock in self.shocks:
            if shock.ban_families and shock.progress(self.month) > 0:
                r = [REGIONS.index(x) for x in shock.ban_regions]
                s = [SEGMENT_NAMES.index(x) for x in shock.ban_segments]
                f = [self.family_names.index(x) for x in shock.ban_families]
                cell_mask[np.ix_(r, s, f)] = False
        direct = cell_mask.copy()
        us_closed = (self.origin == ORIGINS.index("US")) & ~self.is_open
        for region in NO_US_CLOSED:
            direct[REGIONS.index(region), :, us_closed] = False
        return direct, cell_mask

    def _neighbour_means(self, rows=slice(None), cols=slice(None)) -> np.ndarray:
        """Mean over each agent's neighbours of [uses family f (0/1) ..., share of work on f ...] (2F columns),
        for the given rows and columns; under complete mixing, demand-weighted population means instead."""
        if self.base_params["network"] == "complete":
            weight = self.population.weight
            stacked = np.hstack([self.work > 0, self.work])[:, cols]
            mean = weight @ stacked / weight.sum()
            return np.broadcast_to(mean, (len(self.work[rows]), len(mean))).astype(np.float32)
        return self._neighbour_sums[rows, cols] * self.inverse_degree[rows, None]

    def _set_work(self, rows: np.ndarray, shares: np.ndarray) -> None:
        """Change the work split of `rows`, keeping the neighbours' sums up to date incrementally: only agents
        who changed their mix touch their neighbours' sums, which is what makes a step cheap at scale."""
        old = self.work[rows]
        delta = np.hstack([(shares > 0).astype(np.float32) - (old > 0), shares - old])
        self.work[rows] = shares
        self.active[rows] = shares.any(axis=1)
        if self.base_params["network"] != "complete":
            self._neighbour_sums += np.asarray(self.graph[rows].T @ delta)

    def _spread_awareness(self) -> None:
        p = self.params
        n_families = len(self.families)
        # Draw for every agent and family each month, so the stream stays aligned across scenarios.
        draws = self._awareness_rng.random((len(self.work), n_families), dtype=np.float32)
        if self.month == self.start_month:
            self.aware[:, self.released] = draws[:, self.released] < p["initial_awareness"]
            return
        # Steady media attention fades with the gap to the frontier; a release makes headlines only near it.
        gap = np.maximum(0.0, self.frontier - self.capability)
        headline = self.released_now & (gap <= p["headline_gap"])
        external = np.minimum(1.0, np.exp(-gap / CAPABILITY_SCALE) * p["awareness_external"]
                              + headline * p["awareness_release"])
        # chance = 1 - (1 - external) * (1 - q * share of neighbours using the family), computed in place
        keep_unaware = self._neighbour_means(cols=slice(0, n_families))
        keep_unaware *= -p["awareness_internal"]
        keep_unaware += 1.0
        keep_unaware *= (1 - external).astype(np.float32)
        learn = draws > keep_unaware  # i.e. draw < chance
        learn &= self.released
        self.aware |= learn

    def utility(self, rows: np.ndarray) -> np.ndarray:
        """Utility of each family for the agents in `rows`, all terms but capability (docs/ODD.md, submodel
        "Choice"); the capability shortfall depends on the use and is added per use in `_work_split`.

        Built from per-agent columns and per-family rows so that no transcendental function runs on the
        agents-by-families matrix: log cost = log API price + (open weights) * log self-hosting discount."""
        p, pop = self.params, self.population
        log_price = np.log(self.price_by_region)[pop.region[rows]]  # region x family table, gathered per agent
        log_cost = log_price + np.outer(self.log_selfhost_discount[rows], self.is_open)
        licence = np.array([LICENCE_PENALTY[x] for x in self.licence])
        trust_weight = np.where(pop.regulated[rows], p["regulated_trust_multiplier"], 1.0)
        family_terms = p["ecosystem_weight"] * self.ecosystem()
        u = -p["price_sensitivity"] * pop.price_weight[rows, None] * log_cost
        u -= p["licence_weight"] * np.outer(pop.licence_friction[rows], licence)
        u += p["openness_weight"] * np.outer(pop.open_need[rows], self.is_open)
        u -= self.trust_matrix()[:, self.origin][pop.region[rows]] * trust_weight[:, None]
        u += family_terms
        u += p["peer_weight"] * self._neighbour_means(rows, slice(len(self.families), None))
        return u.astype(np.float32)

    def ecosystem(self) -> np.ndarray:
        """Each family's ecosystem in [0, 1): the builder-months spent on it so far (integrations, tooling and
        apps on closed APIs; fine-tunes and tooling on open weights), saturating with half-saturation
        `ecosystem_half_months` (docs/ODD.md 7.4). Former form (`ecosystem_form = "open_log"`, for ablations):
        log(1 + derivatives / 1000), open families only and unbounded."""
        if self.base_params["ecosystem_form"] == "open_log":
            return np.log1p(self.derivatives_cum / 1000.0) * self.is_open
        return self.builder_months / (self.builder_months + self.params["ecosystem_half_months"])

    def _work_split(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Each agent's split of work over families: every use (coding, chat/roleplay, agents) is a separate
        logit choice, because a use's capability need decides which families can serve it (coding goes to the
        frontier, roleplay to cheap models; OR9-OR11), and the agent's shares are the use-mix-weighted sum."""
        p, pop = self.params, self.population
        gap = (self.frontier - self.capability).astype(np.float32)  # ECI points behind the frontier
        base = self.utility(rows) - np.float32(p["quality_weight"] / CAPABILITY_SCALE) * gap
        per_point = np.float32(p["capability_weight"] / CAPABILITY_SCALE)
        shares = np.zeros(base.shape, np.float32)
        slack, mix = pop.use_slack[rows], pop.use_mix[rows].astype(np.float32)
        for k in range(slack.shape[1]):
            utility = gap - slack[:, k, None]
            np.maximum(utility, np.float32(0.0), out=utility)  # ECI points below this use's need
            utility *= per_point
            np.subtract(base, utility, out=utility)
            split = logit_shares(utility, options, p["min_share"])
            split *= mix[:, k, None]
            shares += split
        return shares

    def trust_matrix(self) -> np.ndarray:
        """Utility penalty by (region, origin of the model): for Chinese models a shared level plus a regional offset
        outside China and the restricted markets (docs/ODD.md 7.4), so the data can tell the level from the
        differences."""
        p = self.params
        trust = np.zeros((len(REGIONS), len(ORIGINS)))
        for r, region in enumerate(REGIONS):
            shared = p["trust_cn_shared"] if region in TRUST_SHARED_REGIONS else 0.0
            trust[r, ORIGINS.index("CN")] = shared + p[f"trust_cn_{region}"]
        trust[REGIONS.index("china"), ORIGINS.index("US")] = p["trust_us_china"]
        return trust

    def _choose(self) -> None:
        p, pop = self.params, self.population
        routing = (np.array([s.marketplace_share for s in SEGMENTS])[pop.segment]
                   * np.array(list(REGION_MARKETPLACE.values()))[pop.region] * p["marketplace_routing"])
        self.uses_marketplace = pop.marketplace_propensity < np.minimum(1.0, routing)
        switch_rate = np.where(pop.is_firm, p["switch_rate_firm"], p["switch_rate_developer"])
        due = (self._switch_rng.random(len(self.work)) < switch_rate) | (self.month == self.start_month)
        allowed = self.available()
        idle = np.flatnonzero(~self.active)  # uses nothing yet: chooses as soon as it knows an option
        due[idle[(self.aware[idle] & allowed[idle]).any(axis=1)]] = True
        # A ban, or leaving the marketplace: everyone using a family no longer allowed must choose again.
        due |= ((self.work > 0) & ~allowed).any(axis=1)
        rows = np.flatnonzero(due)
        if not p["choice"]:  # everyone splits evenly over what they know, every month
            options = self.aware & allowed
            counts = options.sum(axis=1, keepdims=True)
            self._set_work(np.arange(len(self.work)), np.divide(
                options, counts, out=np.zeros(options.shape, np.float32), where=counts > 0))
        elif len(rows):
            options = self.aware[rows] & allowed[rows]
            self._set_work(rows, self._work_split(rows, options))

    def _usage_by_group(self) -> dict[str, np.ndarray]:
        """Demand-weighted use of each family summed over the groups the observation model and the builders
        need, in one matrix product (the groups' weight rows are fixed at build time), plus what the marketplace
        sees (`_marketplace_usage`)."""
        if self._group_weights is None:
            pop = self.population
            us_firms = pop.is_firm & (pop.region == REGIONS.index("north_america"))
            rows = {"all": pop.weight, "builders": pop.weight * pop.is_builder,
                    "us_firms": pop.weight * us_firms}
            rows.update({f"region_{r}": pop.weight * (pop.region == i) for i, r in enumerate(REGIONS)})
            self._group_names = list(rows)
            self._group_weights = np.stack(list(rows.values())).astype(np.float32)
        usage = dict(zip(self._group_names, (self._group_weights @ self.work).astype(float)))
        usage["marketplace"] = self._marketplace_usage()
        return usage

    def _marketplace_usage(self) -> np.ndarray:
        """Use routed through a marketplace like OpenRouter, which sees only what passes through it. An agent who
        comes to the marketplace for families not sold to it directly (US closed APIs in China and restricted
        markets) buys what is sold directly (its domestic models) at home and routes only
        `marketplace_home_share` of that use through the marketplace; every other marketplace agent routes all
        its use (docs/ODD.md 7.6)."""
        rows = np.flatnonzero(self.uses_marketplace)
        n_families = len(self.families)
        direct = self.availability.reshape(-1, n_families)  # per (region, segment) cell
        comes_for_resale = (self.marketplace_availability.reshape(-1, n_families) & ~direct).any(axis=1)
        routed = np.where(comes_for_resale[:, None] & direct, np.float32(self.params["marketplace_home_share"]),
                          np.float32(1.0))
        routed_work = self.work[rows] * routed[self.cell[rows]]
        weight, region = self.population.weight[rows], self.population.region[rows]
        # By the agent's region too (OR15 counts spend by region), and each agent's routed total (its task mix).
        self.marketplace_by_region = np.stack([weight[region == r] @ routed_work[region == r]
                                               for r in range(len(REGIONS))]).astype(float)
        self.marketplace_rows, self.marketplace_routed = rows, routed_work.sum(axis=1)
        return (weight @ routed_work).astype(float)

    def _publish_and_download(self) -> None:
        p = self.params
        builder_use = self.usage["builders"]
        builders = self._group_weights[self._group_names.index("builders")].sum()
        if builders > 0:  # a tiny population may have no builder
            self.builder_months += builder_use / builders
        licence_factor = np.array([LICENCE_DERIVATIVE_FACTOR[x] for x in self.licence])
        # Hugging Face grows: the same use brings more downloads and uploads each year (level 1 in 2025-01),
        # up to the end of the data; projections hold it there rather than extrapolate an unmeasured rate.
        activity = p["hf_growth"] ** ((min(self.month, HF_GROWTH_END) - HF_REFERENCE_MONTH) / 12)
        per_use = activity * self.sizes_factor * self.is_open
        # Expected counts, not Poisson draws: a pure observation scale stays exactly proportional (it is solved,
        # sim/targets.py), and the counts are thousands a month, where Poisson noise is below a percent.
        self.new_derivatives = p["derivatives_scale"] * builder_use * licence_factor * per_use
        downloads = p["downloads_scale"] * self.usage["all"] * per_use
        for lab, new, down in zip(self.labs, self.new_derivatives, downloads):
            lab.derivatives_cum += new
            lab.downloads_cum += down
        self.derivatives_cum = np.array([lab.derivatives_cum for lab in self.labs])
        self.downloads_cum = np.array([lab.downloads_cum for lab in self.labs])


def logit_shares(utility: np.ndarray, options: np.ndarray, min_share: float) -> np.ndarray:
    """Multinomial-logit split of work over the allowed options; shares below `min_share` are dropped and the
    rest renormalised (an agent does not route a sliver of its work to a family). Rows with no option get zeros."""
    u = np.where(options, utility.astype(np.float32, copy=False), np.float32(-np.inf))
    top = u.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    u -= top
    weights = np.exp(u, out=u)
    total = weights.sum(axis=1, keepdims=True)
    has_option = total > 0  # False for a row without options (all weights exp(-inf) = 0) or with a NaN utility
    weights[~has_option[:, 0]] = 0.0
    shares = np.divide(weights, total, out=weights, where=has_option)  # in place
    # The largest share is the top option's, exp(0) / total: no second pass over the matrix to find it.
    best = np.divide(np.float32(1.0), total, out=np.zeros_like(total), where=has_option)
    shares[(shares < min_share) & (shares < best)] = 0.0
    total = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, total, out=shares, where=total > 0)
