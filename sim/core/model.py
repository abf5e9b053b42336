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
from mesa.discrete_space import Network

from sim.core import kernels, observe
from sim.core.agents import LICENCE_DERIVATIVE_FACTOR, LICENCE_PENALTY, Developer, Firm, Lab
from sim.core.calendar import month_label, parse_month
from sim.core.catalogue import ORIGINS, TIERS, families, releases
from sim.core.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS, TRUST_SHARED_REGIONS, resolve
from sim.core.population import (NO_US_CLOSED, REGIONS, SEGMENT_NAMES, SEGMENTS, USES,
                            build_network, build_population, build_representative_population, routing_by_cell,
                            workload_slack)
from sim.core.shocks import Shock, effective_parameters, regional_price_factors

HF_REFERENCE_MONTH = parse_month("2025-01")  # month in which `hf_growth` leaves the scales unchanged
HF_GROWTH_END = parse_month("2026-01")  # last month of the calibration data: no growth figure beyond it
DRAW_BLOCK = 16_384  # agents whose monthly random draws (awareness, workloads) are held at once
TASK_FIT_SPAWN_KEY = 2**31  # the task-fit key's seed sequence: a child index the model's spawn() never reaches
CAPABILITY_SCALE = 5.0  # ECI points of shortfall below an agent's need that cost one unit of `capability_weight`


class DiffusionModel(mesa.Model):
    """Monthly diffusion of model families among weighted developer and firm agents.

    Takes flat keyword parameters (sim.core.parameters.PARAMETERS; any not given take their default) plus `rng`
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
        streams = self.rng.spawn(8 + n_families)  # spawned children are fixed by index: adding one kept the rest
        # streams[4] drew Poisson derivative counts; now unused, kept so every other stream keeps its index.
        self._awareness_rng, self._switch_rng, pop_rng, net_rng = streams[:4]
        slack_rng, self._workload_rng = streams[6 + n_families:]  # workload needs and choices (docs/ODD.md 7.4)
        self.release_capability = self._draw_uncertain_inputs(streams[5 + n_families], set(parameters))
        self.params = effective_parameters(self.base_params, self.shocks, self.month)
        self._init_supply(streams[5:5 + n_families])
        self._init_demand(pop_rng, net_rng)
        self._init_workloads(slack_rng)
        # Key of the task-fit hash (kernels.task_fit_normal): from the run's seed, not a draw from any stream.
        seed = self.rng.bit_generator.seed_seq
        self.task_fit_key = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, TASK_FIT_SPAWN_KEY)
                                                   ).generate_state(1, np.uint64)[0]
        self._init_monthly_state()
        self._space = None

        self.datacollector = observe.ObservationCollector(model_reporters=observe.model_reporters())
        self._advance()
        self.datacollector.collect(self)

    def _init_supply(self, lab_streams: list[np.random.Generator]) -> None:
        """One Lab per family, each on its own stream, and the families' fixed attributes."""
        self.families = families()
        self.family_names = [f.name for f in self.families]
        self.labs = [Lab(self, f, s) for f, s in zip(self.families, lab_streams)]
        self.is_open = np.array([f.open_weights for f in self.families])
        self.origin = np.array([ORIGINS.index(f.origin) for f in self.families])
        self.sizes_factor = np.array([f.sizes for f in self.families], float) ** self.base_params["sizes_exponent"]

    def _init_demand(self, pop_rng: np.random.Generator, net_rng: np.random.Generator) -> None:
        """Weighted agents, their network and their state (what they know, use and route)."""
        self.representative = self.base_params["population"] == "representative"  # the aggregate twin (sim/calibration/twin.py)
        self.population = pop = (build_representative_population(self.base_params["marketplace_routing"])
                                 if self.representative else build_population(self.base_params["n_agents"], pop_rng))
        n, n_families = len(pop), len(self.families)
        self.graph = build_network(pop, self.base_params["mean_degree"], self.base_params["homophily_region"],
                                   self.base_params["homophily_segment"], net_rng)
        self.graph.sort_indices()  # kernels.pass_on_changes sums each agent's neighbours in index order
        self.inverse_degree = (1 / np.maximum(np.asarray(self.graph.sum(axis=1)).ravel(), 1.0)).astype(np.float32)
        self.cell = (pop.region * len(SEGMENTS) + pop.segment).astype(np.int32)
        # Stratum of an agent: (region, segment, builder); the step sums use by stratum and by whether the agent
        # routes through a marketplace, and every group the observation model needs is a sum of strata.
        self._stratum = (self.cell * 2 + pop.is_builder).astype(np.int32)
        self._builders_weight = float(pop.weight[pop.is_builder].sum())
        self.log_selfhost_discount = np.log(np.minimum(1.0, pop.selfhost_factor))  # <= 0: cheaper to self-host
        assert n_families <= kernels.PAIRWISE_BLOCK, "kernels.row_sum sums rows of at most PAIRWISE_BLOCK families"
        self.aware = np.zeros((n, n_families), dtype=bool)
        self.work = np.zeros((n, n_families), np.float32)  # single precision: shares need no more, and it is faster
        # The part of `work` on each of a family's cheaper tiers (TIERS[1:]: standard, efficient; docs/ODD.md 7.9).
        self.tier_work = np.zeros((n, len(TIERS) - 1, n_families), np.float32)
        self.active = np.zeros(n, dtype=bool)  # uses at least one family
        self._neighbour_sums = np.zeros((n, 2 * n_families), np.float32)  # graph @ [uses f, work share on f]
        # kernels.choose's work areas: the changed agents' changes of [uses f (-1, 0, 1), share of work on f]
        self._changes = (np.zeros((n, n_families), np.int8), np.zeros((n, n_families), np.float32))
        self._slot = np.full(n, -1, np.int32)
        self._changed_agents = np.zeros(n, np.int32)
        self._started = np.zeros(n, np.int32)  # families each agent began using this month (kernels.choose)
        # Use by stratum of each family, then of each family's cheaper tiers in TIERS order (docs/ODD.md 7.9).
        self._usage_by_stratum = np.zeros((4 * len(REGIONS) * len(SEGMENTS), len(TIERS) * n_families))
        self._awareness_draws = np.empty((min(n, DRAW_BLOCK), n_families), np.float32)  # a block's (_spread_awareness)
        self.uses_marketplace = np.zeros(n, dtype=bool)
        # Retention (OR14): month in which each agent began using each family (-1: not using it), and the
        # demand weight of each month's new (marketplace agent, family) pairs.
        assert self.end_month < np.iinfo(np.int16).max, "adopted_month keeps months as int16"
        self.adopted_month = np.full((n, n_families), -1, np.int16)
        self.new_pairs_weight: dict[int, float] = {}

    def _init_workloads(self, slack_rng: np.random.Generator) -> None:
        """Workloads (docs/ODD.md 7.4): per agent and use, how many, and the family each runs on (-1: none yet)."""
        pop, scale = self.population, self.base_params["workload_scale"]
        n, n_families = len(pop), len(self.families)
        self.workloads_per_use = (np.maximum(1, np.rint(pop.workloads * scale)).astype(np.int16) if scale > 0
                                  else np.zeros(n, np.int16))
        slots = self.workloads_per_use.max(initial=0)
        self.workload_family = np.full((n, len(USES), slots), -1, np.int16)
        self.workload_slack = workload_slack(pop.use_slack, slots, slack_rng)
        # This month's draws for a block of agents at a time (a million agents' would take 120 MB); the stream's
        # state at the start of the month is kept, so `workload_draws` can draw them all again.
        self._workload_draws = np.zeros((min(n, DRAW_BLOCK), len(USES), slots), np.float32)
        self._workload_month_state: dict | None = None
        # Each agent's split by use (OR10, OR11 read marketplace tokens per use): the workloads' families keep it;
        # without workloads the split of each use is kept here (agents x uses x families; empty with workloads).
        self.use_work = np.zeros((0 if slots else n, len(USES), n_families), np.float32)
        # Marketplace agents' use per (region x segment cell, use, family), summed by kernels.choose's pass.
        self._market_use_by_cell = np.zeros((len(REGIONS) * len(SEGMENTS), len(USES), n_families))

    def _init_monthly_state(self) -> None:
        """Declare what each month sets (`_advance`): the families' arrays, availability, use by group, the
        marketplace's view and the observations; and the cumulative counters, owned here (labs read them)."""
        n_families, n_tiers, n_regions = len(self.families), len(TIERS), len(REGIONS)
        self.released, self.released_now = np.zeros((2, n_families), dtype=bool)
        self.capability, self.price = np.zeros((2, n_families))
        self.tier_capability, self.tier_price = np.zeros((2, n_families, n_tiers))  # family x tier (TIERS)
        self.tier_offered = np.zeros((n_families, n_tiers - 1), dtype=bool)  # family x cheaper tier
        self.price_by_region = np.zeros((n_regions, n_families))
        self.tier_price_by_region = np.zeros((n_regions, n_families, n_tiers))
        self.licence: list[str] = []
        self.frontier = 0.0
        self.availability = self.marketplace_availability = None  # (region, segment, family), see _availability
        self.usage: dict[str, np.ndarray] = {}  # use of each family by group, see _usage_from_strata
        self.marketplace_by_region = np.zeros((n_regions, n_families))  # see _marketplace_usage
        self.marketplace_tiers_by_region = np.zeros((n_regions, n_tiers - 1, n_families))
        self.marketplace_by_use = np.zeros((len(USES), n_families))
        self.observations: dict[str, float] = {}
        self.new_derivatives = np.zeros(n_families)
        self.derivatives_cum = np.zeros(n_families)
        self.downloads_cum = np.zeros(n_families)
        self.builder_months = np.zeros(n_families)  # months of all builders' work on each family, summed

    def _draw_uncertain_inputs(self, rng: np.random.Generator, given: set[str]) -> dict:
        """Draw this run's uncertain inputs on their own stream (a fixed number of draws, so member k gets the same
        draws in every scenario): each catalogue release's capability, rated or imputed with its standard deviation
        (catalogue.py), and each projection assumption not given explicitly, uniform in its documented range
        (sim/core/parameters.py). With `draw_assumptions` off, central values. Returns release -> capability. A hindcast
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
    def large_north_american_firms(self) -> np.ndarray:
        """The agents ENT4 surveys (observe.large_north_american_firms), found once: the population is fixed."""
        return observe.large_north_american_firms(self.population)

    @functools.cached_property
    def users(self) -> list:
        """Developers and firms in index order, as Mesa agents that read their own row of the model's arrays;
        created on first use, because a million Python agent objects cost gigabytes the step never needs."""
        is_firm = self.population.is_firm
        return [(Firm if is_firm[i] else Developer)(self, i) for i in range(len(is_firm))]

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
        self._choose()  # also sets self.usage
        self._publish_and_download()
        self.observations = observe.measure(self)

    def _update_family_arrays(self) -> None:
        labs = self.labs
        self.released = np.array([lab.released for lab in labs])
        self.released_now = np.array([lab.released_this_month for lab in labs])
        self.capability = np.nan_to_num(np.array([lab.capability for lab in labs]), nan=0.0)
        self.price = np.nan_to_num(np.array([lab.price for lab in labs]), nan=1.0)
        # Family x tier (TIERS); a tier a family does not offer is its flagship.
        self.tier_capability = np.nan_to_num(np.array([lab.tier_capability for lab in labs]), nan=0.0)
        self.tier_price = np.nan_to_num(np.array([lab.tier_price for lab in labs]), nan=1.0)
        self.tier_offered = np.array([lab.tier_offered for lab in labs])  # family x cheaper tier (TIERS[1:])
        # Region x family price: equal to `price` unless a scenario changes a price in some regions only.
        factors = regional_price_factors(self.shocks, self.family_names, self.month)
        self.price_by_region = self.price * factors
        self.tier_price_by_region = self.tier_price * factors[..., None]  # region x family x tier
        self.licence = [lab.licence for lab in labs]
        self.frontier = float(self.capability[self.released].max()) if self.released.any() else 0.0

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

    def _population_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Under complete mixing, the demand-weighted population means of [uses family f (0/1), share of work on
        f] that stand in for every agent's neighbour means (float32, as the step keeps them)."""
        weight = self.population.weight
        # einsum, not `@`: BLAS threads would change the last bits (observe.weighted_total)
        mean = np.einsum("i,ij->j", weight, np.hstack([self.work > 0, self.work])) / weight.sum()
        return np.split(mean.astype(np.float32), 2)

    def _peers(self) -> tuple:
        """What the kernels read of the neighbours: their sums, each agent's 1/degree, and under complete mixing
        the population means instead."""
        complete = self.base_params["network"] == "complete"
        mean_share = self._population_means()[1] if complete else np.zeros(len(self.families), np.float32)
        return self._neighbour_sums, self.inverse_degree, complete, mean_share

    def _spread_awareness(self) -> None:
        p = self.params
        first, complete = self.month == self.start_month, self.base_params["network"] == "complete"
        keep_external = (1 - self.external_awareness()).astype(np.float32)
        mean_use = self._population_means()[0] if complete else np.zeros(len(self.families), np.float32)
        # Draw for every agent and family each month, so the stream stays aligned across scenarios: a block of
        # agents at a time, in order (the same numbers as in one call).
        for start in range(0, len(self.aware), DRAW_BLOCK):
            rows = slice(start, start + DRAW_BLOCK)
            aware = self.aware[rows]
            draws = self._awareness_rng.random(out=self._awareness_draws[:len(aware)], dtype=np.float32)
            if self.representative:  # the aggregate twin knows every released family
                aware[:] = self.released
            elif first:
                aware[:, self.released] = draws[:, self.released] < p["initial_awareness"]
            else:
                kernels.spread_awareness(aware, draws, self.released, self._neighbour_sums[rows],
                                         self.inverse_degree[rows], mean_use, complete, keep_external,
                                         p["awareness_internal"])

    def external_awareness(self) -> np.ndarray:
        """Each family's monthly chance of reaching an unaware agent from outside its neighbours: steady media
        attention fades with the gap to the frontier, and a release makes headlines only near it."""
        p = self.params
        gap = np.maximum(0.0, self.frontier - self.capability)
        headline = self.released_now & ((gap <= p["headline_gap"]) | (not self.base_params["headline_filter"]))
        return np.minimum(1.0, np.exp(-gap / CAPABILITY_SCALE) * p["awareness_external"]
                          + headline * p["awareness_release"])

    def _agent_arrays(self, draws: np.ndarray | None = None, first_row: int = 0) -> tuple:
        """Per-agent attributes the choice reads, in kernels.utility's and kernels.work_split's order; the workload
        draws (`draws`, default the step's block) start at agent `first_row`."""
        pop = self.population
        weighs_origin = pop.regulated | (pop.is_firm & self.base_params["firm_origin_trust"])  # ODD 7.4, trust
        return (pop.region, pop.price_weight, self.log_selfhost_discount, pop.licence_friction, pop.open_need,
                weighs_origin, pop.use_slack, pop.use_mix.astype(np.float32), self.workloads_per_use,
                self.workload_slack, self.workload_family, self._workload_draws if draws is None else draws,
                first_row)

    def workload_draws(self) -> np.ndarray:
        """This month's workload draws (agents x uses x workload slots), drawn again from the stream's state at the
        start of the month: the step holds only a block of them at a time."""
        rng = np.random.Generator(type(self._workload_rng.bit_generator)())
        rng.bit_generator.state = self._workload_month_state
        return rng.random(self.workload_family.shape, dtype=np.float32)

    def _choice_terms(self) -> tuple:
        """This month's per-family and per-region terms of the utility and the rule's constants, in
        kernels.utility's and kernels.work_split's order (docs/ODD.md, submodel "Choice"). Built here as small
        arrays so that a change to a family quantity (price, capability, ecosystem, licence, trust) never
        touches the kernels."""
        p = self.params
        licence = np.array([LICENCE_PENALTY[x] for x in self.licence])
        gap = (self.frontier - self.capability).astype(np.float32)  # ECI points behind the frontier
        tier_gap = (self.frontier - self.tier_capability[:, 1:]).astype(np.float32)  # family x cheaper tier
        # region x family x cheaper tier: log of the tier's price relative to the flagship's
        tier_log_price = np.log(self.tier_price_by_region[..., 1:] / self.price_by_region[..., None]).astype(np.float32)
        return (np.log(self.price_by_region), self.is_open.astype(float), licence,
                self.trust_matrix()[:, self.origin], p["ecosystem_weight"] * self.ecosystem(), p["price_sensitivity"],
                p["licence_weight"], p["openness_weight"], p["regulated_trust_multiplier"],
                np.float32(p["peer_weight"]), gap, np.float32(p["quality_weight"] / CAPABILITY_SCALE),
                np.float32(p["capability_weight"] / CAPABILITY_SCALE), np.float32(p["min_share"]),
                np.float32(np.exp(p["switching_cost"])), tier_log_price, tier_gap, self.tier_offered,
                np.float32(p["task_fit_sd"]), self.task_fit_key)

    def utility(self, rows: np.ndarray) -> np.ndarray:
        """Utility of each family for the agents in `rows`, all terms but capability (kernels.utility); the
        capability shortfall depends on the use and is added per use in `_work_split`."""
        rows = np.asarray(rows, dtype=np.int64)
        n_families = len(self.families)
        out = np.empty((len(rows), n_families), np.float32)
        kernels.utilities(rows, self._agent_arrays(), self._choice_terms(), self._peers(), out,
                          np.empty(n_families, np.float32), np.arange(n_families))
        return out

    def ecosystem(self) -> np.ndarray:
        """Each family's ecosystem in [0, 1): the builder-months spent on it so far (integrations, tooling and
        apps on closed APIs; fine-tunes and tooling on open weights), saturating with half-saturation
        `ecosystem_half_months` (docs/ODD.md 7.4). Former form (`ecosystem_form = "open_log"`, for ablations):
        log(1 + derivatives / 1000), open families only and unbounded."""
        if self.base_params["ecosystem_form"] == "open_log":
            return np.log1p(self.derivatives_cum / 1000.0) * self.is_open
        return self.builder_months / (self.builder_months + self.params["ecosystem_half_months"])

    def _work_split(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Each agent's split of work over the allowed `options` (kernels.work_split), without changing state: with
        workloads, on a copy of the workloads' families and with this month's workload draws. Rows x (family's
        share, its part on each cheaper tier) x families."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), len(TIERS), len(self.families)), np.float32)
        agents = self._agent_arrays(self.workload_draws())
        agents = agents[:10] + (self.workload_family.copy(),) + agents[11:]
        by_use = np.empty((len(rows), len(USES), len(self.families)), np.float32)
        kernels.work_splits(rows, np.ascontiguousarray(options), agents, self._choice_terms(),
                            self._peers(), out, by_use, *self._choice_work_areas()[1:3])
        return out

    def _choice_work_areas(self) -> tuple:
        """Small work areas for the kernels (they allocate nothing): new split, the split's work area and option
        list (kernels.work_split), options, the neighbour gather's row, and the new split's part in each use."""
        n_families = len(self.families)
        return (np.empty((len(TIERS), n_families), np.float32), np.empty((4 + len(TIERS), n_families), np.float32),
                np.empty(n_families, np.int64), np.empty(n_families, bool), np.empty(2 * n_families, np.float32),
                np.empty((len(USES), n_families), np.float32))

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
        """Who re-evaluates, their new split and the neighbours' sums, in one pass (kernels.choose); the month's
        use by group follows from the stratum sums that pass accumulates."""
        p, pop = self.params, self.population
        routing = routing_by_cell(p["marketplace_routing"])
        n_families = len(self.families)
        allowed_by_cell = np.concatenate([self.availability.reshape(-1, n_families),
                                          self.marketplace_availability.reshape(-1, n_families)])
        switch_draws = self._switch_rng.random(len(self.work))
        new, area, option, options, total, new_by_use = self._choice_work_areas()
        agents, terms, peers = self._agent_arrays()[:11], self._choice_terms(), self._peers()
        # One draw per workload slot and month for every agent, so the stream stays aligned across scenarios;
        # drawn a block of agents at a time, in order (the same numbers as in one call).
        self._workload_month_state = self._workload_rng.bit_generator.state
        n, n_changed = len(self.work), 0
        for start in range(0, max(n, 1), DRAW_BLOCK):
            stop = min(start + DRAW_BLOCK, n)
            draws = self._workload_rng.random(out=self._workload_draws[:stop - start], dtype=np.float32)
            n_changed = kernels.choose(
                self.work, self.tier_work, self.use_work, self.aware, self.active, self.uses_marketplace,
                self._changes, self._slot, self._usage_by_stratum, self._market_use_by_cell, self.cell, self._stratum,
                pop.weight, pop.is_firm, pop.marketplace_propensity, self.graph.indptr, self.graph.indices,
                agents + (draws, start), terms, peers, switch_draws, self.month == self.start_month, bool(p["choice"]),
                routing.ravel(), allowed_by_cell, p["switch_rate_firm"], p["switch_rate_developer"], new, new_by_use,
                options, area, option, self._changed_agents, total, self.adopted_month, self.month, self._started,
                start, stop, n_changed)
        # The demand weight of this month's new (marketplace agent, family) pairs: what retention (OR14) is
        # measured against.
        self.new_pairs_weight[self.month] = observe.weighted_total(pop.weight * self.uses_marketplace, self._started)
        self.usage = self._usage_from_strata()

    def _usage_by_group(self) -> dict[str, np.ndarray]:
        """Demand-weighted use of each family by group, recomputed from the current state (the step gets the
        same sums from kernels.choose's pass)."""
        kernels.usage_by_stratum(self.work, self.tier_work, self.use_work, self.active, self.uses_marketplace,
                                 self.cell, self._stratum, self.population.weight, self._agent_arrays(),
                                 bool(self.params["choice"]), self._usage_by_stratum, self._market_use_by_cell)
        return self._usage_from_strata()

    def _usage_from_strata(self) -> dict[str, np.ndarray]:
        """Use of each family summed over the groups the observation model and the builders need: all agents,
        builders, US firms, each region, and what a marketplace like OpenRouter sees (`_marketplace_usage`)."""
        # axes: region, segment, builder, routes through a marketplace, family's use then its cheaper tiers' parts
        # (TIERS), family. "*_tiers" groups are (cheaper tier, family).
        both = self._usage_by_stratum.reshape(len(REGIONS), len(SEGMENTS), 2, 2, len(TIERS), len(self.families))
        strata, tiers = both[..., 0, :], both[..., 1:, :]
        firms = np.array([s.kind == "firm" for s in SEGMENTS])
        usage = {"all": strata.sum(axis=(0, 1, 2, 3)), "builders": strata[:, :, 1].sum(axis=(0, 1, 2)),
                 "us_firms": strata[REGIONS.index("north_america"), firms].sum(axis=(0, 1, 2)),
                 "us_firms_tiers": tiers[REGIONS.index("north_america"), firms].sum(axis=(0, 1, 2))}
        usage.update({f"region_{r}": strata[i].sum(axis=(0, 1, 2)) for i, r in enumerate(REGIONS)})
        usage["marketplace"] = self._marketplace_usage(strata[:, :, :, 1].sum(axis=2), tiers[:, :, :, 1].sum(axis=2))
        usage["marketplace_tiers"] = self.marketplace_tiers_by_region.sum(axis=0)
        usage["marketplace_by_use"] = self.marketplace_by_use
        return usage

    def _marketplace_usage(self, market_use_by_cell: np.ndarray, tier_use_by_cell: np.ndarray) -> np.ndarray:
        """Use routed through a marketplace like OpenRouter, which sees only what passes through it, from the
        marketplace agents' use by (region, segment) cell. An agent who comes to the marketplace for families
        not sold to it directly (US closed APIs in China and restricted markets) buys what is sold directly (its
        domestic models) at home and routes only `marketplace_home_share` of that use through the marketplace;
        every other marketplace agent routes all its use (docs/ODD.md 7.6). Also kept: the same by the agents'
        region (OR15 counts spend by region), its cheaper tiers' parts (from `tier_use_by_cell`), each
        marketplace agent's routed total (its task mix, OR9), and the routed use per use and family (uses x
        families, from the step's per-cell sums: OR10, OR11)."""
        direct = self.availability
        comes_for_resale = (self.marketplace_availability & ~direct).any(axis=2)
        routed = np.where(comes_for_resale[:, :, None] & direct, self.params["marketplace_home_share"], 1.0)
        self.marketplace_by_region = (market_use_by_cell * routed).sum(axis=1)
        self.marketplace_tiers_by_region = (tier_use_by_cell * routed[:, :, None]).sum(axis=1)  # region x tier x family
        routed_by_cell = routed.reshape(-1, len(self.families))
        self.marketplace_by_use = (self._market_use_by_cell * routed_by_cell[:, None, :]).sum(axis=0)
        return self.marketplace_by_region.sum(axis=0)

    def _publish_and_download(self) -> None:
        p = self.params
        builder_use = self.usage["builders"]
        if self._builders_weight > 0:  # a tiny population may have no builder
            self.builder_months += builder_use / self._builders_weight
        licence_factor = np.array([LICENCE_DERIVATIVE_FACTOR[x] for x in self.licence])
        # Hugging Face grows: the same use brings more downloads and uploads each year (level 1 in 2025-01),
        # up to the end of the data; projections hold it there rather than extrapolate an unmeasured rate.
        activity = p["hf_growth"] ** ((min(self.month, HF_GROWTH_END) - HF_REFERENCE_MONTH) / 12)
        per_use = activity * self.sizes_factor * self.is_open
        # Expected counts, not Poisson draws: a pure observation scale stays exactly proportional (it is solved,
        # sim/inputs/targets.py), and the counts are thousands a month, where Poisson noise is below a percent.
        self.new_derivatives = p["derivatives_scale"] * builder_use * licence_factor * per_use
        downloads = p["downloads_scale"] * self.usage["all"] * per_use
        self.derivatives_cum += self.new_derivatives
        self.downloads_cum += downloads

