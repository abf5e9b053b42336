"""Who demands models: regions, segments, agent attributes and the word-of-mouth network.

Agents are drawn stratified by (region, segment) cell; each agent's `weight` is its cell's share of real token
demand divided by the cell's agent count, so every aggregate is a weighted sum and does not depend on how many
agents are simulated.

ASSUMPTIONS (no public figure gives these splits; ranges in docs/ODD.md): the regional split of token demand is
anchored loosely on OpenRouter spend by region (OR15: USA 47%, Asia's share 13% -> 31% during 2025) and the
Global North/South adoption gap (Microsoft AI Economy Institute, Jan 2026); the segment mix and per-segment
traits are set by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# Region: share of world token demand (ASSUMPTION, each +-50%).
REGION_DEMAND = {
    "north_america": 0.40,
    "europe": 0.20,
    "china": 0.15,
    "asia_pacific": 0.13,
    "global_south": 0.09,
    "restricted": 0.03,
}
REGIONS = tuple(REGION_DEMAND)
# Region: relative chance of routing through a global marketplace like OpenRouter (ASSUMPTION, anchored on OR15:
# China is 6% of OpenRouter spend, far below its share of world demand; range 0.1-1 for china and restricted).
REGION_MARKETPLACE = {
    "north_america": 1.0,
    "europe": 1.0,
    "china": 0.2,
    "asia_pacific": 1.0,
    "global_south": 0.8,
    "restricted": 0.5,
}
# Regions where US closed APIs are not offered (provider terms and sanctions).
NO_US_CLOSED = ("china", "restricted")


# Uses of models and the capability they need: ECI points below the closed frontier that still serve the use
# (ASSUMPTION, drawn uniformly in these ranges; cf. OR9-OR11: coding goes to frontier models, roleplay to cheap
# open ones).
USES = ("coding", "chat_roleplay", "agents")
USE_SLACK = {"coding": (0.0, 4.0), "chat_roleplay": (10.0, 25.0), "agents": (0.0, 6.0)}
USE_MIX_CONCENTRATION = 5.0  # Dirichlet concentration around a segment's mean use mix (ASSUMPTION, 2-20)
# Region: multiplier on price weight, for income (ASSUMPTION, 0.8-2; cf. the Global North/South adoption gap).
REGION_PRICE_FACTOR = {
    "north_america": 1.0,
    "europe": 1.0,
    "china": 1.2,
    "asia_pacific": 1.1,
    "global_south": 1.5,
    "restricted": 1.3,
}
PRICE_WEIGHT_SPREAD = 0.25  # log-normal spread of price weight between agents of a cell (ASSUMPTION, 0-0.5)


@dataclass(frozen=True)
class Segment:
    """Traits of a demand segment (all ASSUMPTIONS; ranges in docs/ODD.md)."""

    name: str
    kind: str  # "developer" or "firm"
    demand: float  # share of a region's token demand
    price_weight: float  # weight on log cost before `price_sensitivity` (scale and income)
    use_mix: tuple[float, float, float]  # mean shares of coding, chat/roleplay, agents
    open_need: tuple[float, float]  # need for data control and customisation, 0-1
    licence_friction: float  # how much licence restrictions bite (shipping products, legal review)
    selfhost_factor: tuple[float, float]  # cost of running open weights oneself relative to the API price (skill)
    builder_share: float  # share of agents that fine-tune and publish derivatives
    marketplace_share: float  # share of agents routing through a marketplace like OpenRouter
    regulated: bool = False
    workloads: int = 1  # separate workloads (products, tasks) per use, each on one family (comment below SEGMENTS)


SEGMENTS = (
    Segment("hobbyist", "developer", 0.15, 1.6, (0.2, 0.7, 0.1), (0.2, 0.8), 0.2, (0.5, 1.5), 0.25, 0.60,
            workloads=1),
    Segment("startup", "developer", 0.20, 1.0, (0.5, 0.2, 0.3), (0.1, 0.6), 0.6, (0.7, 1.5), 0.15, 0.35,
            workloads=2),
    Segment("app_builder", "developer", 0.20, 1.2, (0.2, 0.6, 0.2), (0.1, 0.6), 0.8, (0.7, 1.5), 0.10, 0.50,
            workloads=3),
    Segment("sme", "firm", 0.15, 0.8, (0.3, 0.5, 0.2), (0.1, 0.5), 1.0, (0.9, 2.0), 0.02, 0.08, workloads=3),
    Segment("enterprise", "firm", 0.20, 0.4, (0.4, 0.3, 0.3), (0.2, 0.8), 1.2, (0.6, 1.5), 0.03, 0.03,
            workloads=10),
    Segment("regulated_enterprise", "firm", 0.10, 0.3, (0.3, 0.4, 0.3), (0.4, 1.0), 1.5, (0.7, 1.8), 0.01, 0.01,
            regulated=True, workloads=10),
)
# Workloads per use (ASSUMPTION, no public count per segment): a hobbyist has one project per use, a startup or
# app builder a few products, a large firm many production use cases (range: hobbyist 1-2, startup 1-4, app
# builder 1-6, SME 2-6, enterprise and regulated 4-30). Each workload runs on one family, so how many families an
# agent can use is bounded by its workloads: large firms multi-home (ENT4: 81% of large enterprises run three or
# more families), hobbyists mostly do not; apps multi-home too (Fradkin, "Demand for LLMs"). The parameter
# `workload_scale` multiplies these counts (0: the former continuous split, docs/ODD.md 7.4).
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)


@dataclass
class Population:
    """Per-agent attributes as arrays (index = agent position)."""

    region: np.ndarray  # int index into REGIONS
    segment: np.ndarray  # int index into SEGMENTS
    weight: np.ndarray  # share of world token demand
    price_weight: np.ndarray
    use_mix: np.ndarray  # N x 3 shares of coding, chat/roleplay, agents
    use_slack: np.ndarray  # N x 3 ECI points below the frontier each use tolerates
    open_need: np.ndarray
    licence_friction: np.ndarray
    selfhost_factor: np.ndarray
    is_builder: np.ndarray  # bool
    is_firm: np.ndarray  # bool
    regulated: np.ndarray  # bool
    marketplace_propensity: np.ndarray  # uniform draw compared with the segment's routing share
    workloads: np.ndarray  # int: the segment's workloads per use (before `workload_scale`)

    def __len__(self) -> int:
        return len(self.region)


def cell_counts(n_agents: int) -> np.ndarray:
    """Agents per (region, segment) cell: proportional to demand, at least one per cell, summing to n_agents."""
    demand = np.outer(list(REGION_DEMAND.values()), [s.demand for s in SEGMENTS])
    n_cells = demand.size
    if n_agents < n_cells:
        raise ValueError(f"n_agents must be at least {n_cells} (one per region and segment)")
    extra = (n_agents - n_cells) * demand.ravel() / demand.sum()
    counts = 1 + np.floor(extra).astype(int)
    remainder = n_agents - counts.sum()
    counts[np.argsort(-(extra - np.floor(extra)), kind="stable")[:remainder]] += 1
    return counts.reshape(demand.shape)


def build_population(n_agents: int, rng: np.random.Generator) -> Population:
    counts = cell_counts(n_agents)
    demand = np.outer(list(REGION_DEMAND.values()), [s.demand for s in SEGMENTS])
    demand /= demand.sum()
    region = np.repeat(np.repeat(np.arange(len(REGIONS)), len(SEGMENTS)), counts.ravel())
    segment = np.repeat(np.tile(np.arange(len(SEGMENTS)), len(REGIONS)), counts.ravel())
    weight = (demand / counts).ravel()[region * len(SEGMENTS) + segment]

    def trait(name):
        return np.array([getattr(s, name) for s in SEGMENTS])[segment]

    def uniform(name):
        bounds = np.array([getattr(s, name) for s in SEGMENTS])[segment]
        return rng.uniform(bounds[:, 0], bounds[:, 1])

    mean_mix = np.array([s.use_mix for s in SEGMENTS])[segment]
    use_mix = _dirichlet_rows(rng, USE_MIX_CONCENTRATION * mean_mix)
    use_slack = np.stack([rng.uniform(*USE_SLACK[u], n_agents) for u in USES], axis=1)
    price_factor = np.array(list(REGION_PRICE_FACTOR.values()))[region]
    return Population(
        region=region,
        segment=segment,
        weight=weight,
        price_weight=trait("price_weight") * price_factor * rng.lognormal(0.0, PRICE_WEIGHT_SPREAD, n_agents),
        use_mix=use_mix,
        use_slack=use_slack.astype(np.float32),
        open_need=uniform("open_need"),
        licence_friction=trait("licence_friction"),
        selfhost_factor=uniform("selfhost_factor"),
        is_builder=rng.random(n_agents) < trait("builder_share"),
        is_firm=trait("kind") == "firm",
        regulated=trait("regulated"),
        marketplace_propensity=rng.random(n_agents),
        workloads=trait("workloads"),
    )


def routing_by_cell(marketplace_routing: float) -> np.ndarray:
    """Chance of routing through a marketplace by (region, segment) cell (may exceed 1: then everyone routes)."""
    return (np.array([s.marketplace_share for s in SEGMENTS])[None, :]
            * np.array(list(REGION_MARKETPLACE.values()))[:, None] * marketplace_routing)


def build_representative_population(marketplace_routing: float) -> Population:
    """The aggregate logit twin's demand (sim/calibration/twin.py): per (region, segment) cell two agents with the cell's mean
    traits, one routing through a marketplace and one not, weighted by the cell's demand times the routing chance
    and its complement, so marketplace figures are exact shares rather than one agent's coin flip. Every agent is
    a builder (the ecosystem then counts the cell's whole use, as an aggregate model must)."""
    n_cells = len(REGIONS) * len(SEGMENTS)
    demand = np.outer(list(REGION_DEMAND.values()), [s.demand for s in SEGMENTS]).ravel()
    routed = np.minimum(1.0, routing_by_cell(marketplace_routing)).ravel()
    cell = np.tile(np.arange(n_cells), 2)  # first the routing agents, then the others
    region, segment = cell // len(SEGMENTS), cell % len(SEGMENTS)
    weight = np.concatenate([demand * routed, demand * (1 - routed)]) / demand.sum()

    def trait(name):
        return np.array([getattr(s, name) for s in SEGMENTS])[segment]

    def midpoint(name):
        return trait(name).mean(axis=1)

    n = len(cell)
    slack = np.array([sum(USE_SLACK[u]) / 2 for u in USES], np.float32)
    lognormal_mean = np.exp(PRICE_WEIGHT_SPREAD ** 2 / 2)
    return Population(
        region=region, segment=segment, weight=weight,
        price_weight=trait("price_weight") * np.array(list(REGION_PRICE_FACTOR.values()))[region] * lognormal_mean,
        use_mix=trait("use_mix").astype(float), use_slack=np.tile(slack, (n, 1)),
        open_need=midpoint("open_need"), licence_friction=trait("licence_friction"),
        selfhost_factor=midpoint("selfhost_factor"), is_builder=np.ones(n, bool), is_firm=trait("kind") == "firm",
        regulated=trait("regulated"), marketplace_propensity=np.repeat([0.0, 1.0], n_cells),
        workloads=trait("workloads"),
    )


def workload_slack(use_slack: np.ndarray, slots: int, rng: np.random.Generator) -> np.ndarray:
    """Need of each workload (N x uses x slots, ECI points below the frontier it tolerates): the first workload of
    a use keeps the agent's slack for that use, the others draw their own in the use's range (USE_SLACK), so
    one firm's workloads differ in need as its products do: its hard tasks go to the frontier, its easy ones to
    cheaper families (persistent match quality). Drawn for every slot, so the draws do not depend on how many
    workloads an agent has."""
    n = len(use_slack)
    low, high = (np.array([USE_SLACK[u][i] for u in USES], np.float32) for i in (0, 1))
    slack = low[None, :, None] + (high - low)[None, :, None] * rng.random((n, len(USES), slots), np.float32)
    if slots:
        slack[:, :, 0] = use_slack
    return slack


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of concentration parameters (vectorised via normalised gamma draws)."""
    draws = rng.gamma(alpha)
    return draws / draws.sum(axis=1, keepdims=True)


def build_network(
    pop: Population, mean_degree: float, homophily_region: float, homophily_segment: float,
    rng: np.random.Generator,
) -> sp.csr_matrix:
    """Undirected graph clustered by region and segment, as a symmetric 0/1 CSR matrix.

    Each agent draws about mean_degree/2 ties; a tie goes to a random agent of the same cell with probability
    homophily_region * homophily_segment, of the same region (any segment) with probability
    homophily_region * (1 - homophily_segment), and to anyone otherwise. Symmetrising doubles the degree.
    Built with arrays only, so a million agents take seconds.
    """
    n = len(pop)
    stubs = max(1, int(round(mean_degree / 2)))
    source = np.repeat(np.arange(n), stubs)
    kind = rng.random(source.size)
    p_cell = homophily_region * homophily_segment
    p_region = homophily_region
    target = rng.integers(0, n, source.size)  # anyone

    def within(groups: np.ndarray, chosen: np.ndarray):
        # Draw a uniformly random member of the same group for each chosen tie, using sorted group blocks.
        order = np.argsort(groups, kind="stable")
        starts = np.searchsorted(groups[order], np.arange(groups.max() + 1), side="left")
        sizes = np.bincount(groups, minlength=groups.max() + 1)
        g = groups[source[chosen]]
        offsets = (rng.random(chosen.sum()) * sizes[g]).astype(np.int64)
        target[chosen] = order[starts[g] + offsets]

    within(pop.region * len(SEGMENTS) + pop.segment, kind < p_cell)
    within(pop.region, (kind >= p_cell) & (kind < p_region))
    keep = source != target
    rows = np.concatenate([source[keep], target[keep]])
    cols = np.concatenate([target[keep], source[keep]])
    graph = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n))
    graph.data[:] = 1.0  # duplicate ties collapse to one
    return graph
