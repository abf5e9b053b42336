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
from sim.catalogue import ORIGINS, families
from sim.parameters import resolve
from sim.population import NO_US_CLOSED, REGION_MARKETPLACE, REGIONS, SEGMENT_NAMES, SEGMENTS, build_network, build_population
from sim.shocks import Shock, effective_parameters, regional_price_factors

CAPABILITY_SCALE = 5.0  # ECI points over which a capability shortfall costs one unit of `capability_weight`


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
        self.params = effective_parameters(self.base_params, self.shocks, self.month)
        streams = self.rng.spawn(5 + len(families()))
        self._awareness_rng, self._switch_rng, pop_rng, net_rng, self._flow_rng = streams[:5]

        # Supply: one Lab per family.
        self.families = families()
        self.family_names = [f.name for f in self.families]
        self.labs = [Lab(self, f, s) for f, s in zip(self.families, streams[5:])]
        self.is_open = np.array([f.open_weights for f in self.families])
        self.origin = np.array([ORIGINS.index(f.origin) for f in self.families])
        self.sizes_factor = np.array([f.sizes for f in self.families], float) ** self.base_params["sizes_exponent"]

        # Demand: weighted agents, their network and their state.
        n = self.base_params["n_agents"]
        self.population = pop = build_population(n, pop_rng)
        self.graph = build_network(pop, self.base_params["mean_degree"], self.base_params["homophily_region"],
                                   self.base_params["homophily_segment"], net_rng)
        self.degree = np.maximum(np.asarray(self.graph.sum(axis=1)).ravel(), 1.0)
        self.cell = pop.region * len(SEGMENTS) + pop.segment
        n_families = len(self.families)
        self.aware = np.zeros((n, n_families), dtype=bool)
        self.work = np.zeros((n, n_families))
        self.uses_marketplace = np.zeros(n, dtype=bool)
        self.new_derivatives = np.zeros(n_families)
        for i in range(n):
            (Firm if pop.is_firm[i] else Developer)(self, i)
        self._space = None

        self.datacollector = mesa.DataCollector(model_reporters=observe.model_reporters())
        self._advance()
        self.datacollector.collect(self)

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
        self.available = self._availability()
        self._spread_awareness()
        self._choose()
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

    def _availability(self) -> np.ndarray:
        """Who may use which family: released, offered in the region, not banned by a scenario."""
        cell_mask = np.broadcast_to(self.released, (len(REGIONS), len(SEGMENTS), len(self.families))).copy()
        us_closed = (self.origin == ORIGINS.index("US")) & ~self.is_open
        for region in NO_US_CLOSED:
            cell_mask[REGIONS.index(region), :, us_closed] = False
        for shock in self.shocks:
            if shock.ban_families and shock.progress(self.month) > 0:
                r = [REGIONS.index(x) for x in shock.ban_regions]
                s = [SEGMENT_NAMES.index(x) for x in shock.ban_segments]
                f = [self.family_names.index(x) for x in shock.ban_families]
                cell_mask[np.ix_(r, s, f)] = False
        return cell_mask.reshape(-1, len(self.families))[self.cell]

    def _neighbour_mean(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Average of `values` over each agent's neighbours (or over everyone, weighted, under complete mixing)."""
        if self.base_params["network"] == "complete":
            mean = self.population.weight @ values / self.population.weight.sum()
            count = len(self.work) if rows is None else len(rows)
            return np.broadcast_to(mean, (count, values.shape[1]))
        graph, degree = (self.graph, self.degree) if rows is None else (self.graph[rows], self.degree[rows])
        return np.asarray(graph @ values) / degree[:, None]

    def _spread_awareness(self) -> None:
        p = self.params
        n = len(self.work)
        draws = self._awareness_rng.random((n, len(self.families)))
        if self.month == self.start_month:
            incumbent = self.released & ~np.isnan([lab.base_capability for lab in self.labs])
            self.aware[:, incumbent] = draws[:, incumbent] < p["initial_awareness"]
            return
        users = (self.work > 0).astype(np.float32)
        # Media attention follows capability: a family far behind the frontier makes little news.
        closeness = np.exp(-np.maximum(0.0, self.frontier - self.capability) / CAPABILITY_SCALE)
        external = closeness * (p["awareness_external"] + p["awareness_release"] * self.released_now)
        internal = p["awareness_internal"] * self._neighbour_mean(users)
        chance = 1 - (1 - np.minimum(external, 1.0)) * (1 - internal)
        self.aware |= (draws < chance) & self.released

    def utility(self, rows: np.ndarray) -> np.ndarray:
        """Utility of each family for the agents in `rows` (docs/ODD.md, submodel "Choice")."""
        p, pop = self.params, self.population
        cost = self.price_by_region[pop.region[rows]] * np.where(
            self.is_open, np.minimum(1.0, pop.selfhost_factor[rows, None]), 1.0)
        need = self.frontier - pop.slack[rows, None]
        shortfall = np.logaddexp(0.0, (need - self.capability) / CAPABILITY_SCALE)
        licence = np.array([LICENCE_PENALTY[x] for x in self.licence])
        trust = self.trust_matrix()[pop.region[rows]][:, self.origin]
        trust = trust * np.where(pop.regulated[rows], p["regulated_trust_multiplier"], 1.0)[:, None]
        ecosystem = np.log1p(self.derivatives_cum / 1000.0) * self.is_open
        return (
            -p["price_sensitivity"] * pop.price_weight[rows, None] * np.log(cost)
            - p["capability_weight"] * shortfall
            - p["licence_weight"] * pop.licence_friction[rows, None] * licence
            + p["openness_weight"] * pop.open_need[rows, None] * self.is_open
            - trust
            + p["ecosystem_weight"] * ecosystem
            + p["peer_weight"] * self._neighbour_mean(self.work, rows)
        )

    def trust_matrix(self) -> np.ndarray:
        """Utility penalty by (region, origin of the model)."""
        p = self.params
        trust = np.zeros((len(REGIONS), len(ORIGINS)))
        for r, region in enumerate(REGIONS):
            trust[r, ORIGINS.index("CN")] = p[f"trust_cn_{region}"]
        trust[REGIONS.index("china"), ORIGINS.index("US")] = p["trust_us_china"]
        return trust

    def _choose(self) -> None:
        p, pop = self.params, self.population
        routing = (np.array([s.marketplace_share for s in SEGMENTS])[pop.segment]
                   * np.array(list(REGION_MARKETPLACE.values()))[pop.region] * p["marketplace_routing"])
        self.uses_marketplace = pop.marketplace_propensity < np.minimum(1.0, routing)
        options = self.aware & self.available
        switch_rate = np.where(pop.is_firm, p["switch_rate_firm"], p["switch_rate_developer"])
        draws = self._switch_rng.random(len(self.work))
        stranded = (self.work * ~self.available).sum(axis=1) > 0  # using something no longer allowed
        idle = (self.work.sum(axis=1) == 0) & options.any(axis=1)  # knows an option but uses nothing yet
        rows = np.flatnonzero((draws < switch_rate) | stranded | idle | (self.month == self.start_month))
        if not p["choice"]:  # everyone splits evenly over what they know, every month
            counts = options.sum(axis=1, keepdims=True)
            self.work = np.divide(options, counts, out=np.zeros(options.shape), where=counts > 0)
        elif len(rows):
            self.work[rows] = logit_shares(self.utility(rows), options[rows], p["min_share"])

    def _publish_and_download(self) -> None:
        p, pop = self.params, self.population
        builder_use = (pop.weight * pop.is_builder) @ self.work
        licence_factor = np.array([LICENCE_DERIVATIVE_FACTOR[x] for x in self.licence])
        expected = p["derivatives_scale"] * builder_use * licence_factor * self.sizes_factor * self.is_open
        self.new_derivatives = self._flow_rng.poisson(expected).astype(float)
        downloads = p["downloads_scale"] * (pop.weight @ self.work) * self.sizes_factor * self.is_open
        for lab, new, down in zip(self.labs, self.new_derivatives, downloads):
            lab.derivatives_cum += new
            lab.downloads_cum += down
        self.derivatives_cum = np.array([lab.derivatives_cum for lab in self.labs])
        self.downloads_cum = np.array([lab.downloads_cum for lab in self.labs])


def logit_shares(utility: np.ndarray, options: np.ndarray, min_share: float) -> np.ndarray:
    """Multinomial-logit split of work over the allowed options; shares below `min_share` are dropped and the
    rest renormalised (an agent does not route a sliver of its work to a family). Rows with no option get zeros."""
    u = np.where(options, utility, -np.inf)
    top = u.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    weights = np.exp(u - top)
    total = weights.sum(axis=1, keepdims=True)
    shares = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    best = shares.max(axis=1, keepdims=True)
    shares[(shares < min_share) & (shares < best)] = 0.0
    total = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, total, out=np.zeros_like(shares), where=total > 0)
