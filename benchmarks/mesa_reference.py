"""An idiomatic per-agent Mesa model doing the same kind of work as odsim's monthly step, as the yardstick for
benchmarks/bench_model.py (issue 17: the compiled step should be at least 50 times faster per agent-step).

Each agent is a mesa.Agent with its own attributes and its neighbours in a Mesa network space; every month it
learns of families (Bass: media plus the share of neighbours using the family) and, with a switch probability,
splits its work over the families it knows by a 12-option logit on price, trust, capability and peer use,
dropping shares under a minimum and renormalising: the choice odsim makes, written agent by agent in Python.
"""

from __future__ import annotations

import math

import mesa
import networkx as nx
from mesa.discrete_space import Network

N_FAMILIES = 12
MIN_SHARE = 0.05


class Chooser(mesa.discrete_space.FixedAgent):
    def __init__(self, model, price_weight: float, distrust: float, slack: float):
        super().__init__(model)
        self.price_weight, self.distrust, self.slack = price_weight, distrust, slack
        self.aware = [False] * N_FAMILIES
        self.aware[0] = True
        self.shares = [0.0] * N_FAMILIES

    def neighbour_use(self) -> tuple[list[float], list[float]]:
        """Share of neighbours using each family and their mean share of work on it."""
        using, work = [0.0] * N_FAMILIES, [0.0] * N_FAMILIES
        for other in self.neighbours:
            for f, share in enumerate(other.shares):
                using[f] += share > 0
                work[f] += share
        count = max(len(self.neighbours), 1)
        return [u / count for u in using], [w / count for w in work]

    def step(self):
        model = self.model
        unaware = [f for f in range(N_FAMILIES) if not self.aware[f]]
        chooses = self.random.random() < model.switch_rate or not any(self.shares)
        if not unaware and not chooses:
            return
        using, work = self.neighbour_use()
        for f in unaware:
            chance = 1 - (1 - model.external) * (1 - model.internal * using[f])
            self.aware[f] = self.random.random() < chance
        if not chooses:
            return
        utility = {}
        for f in range(N_FAMILIES):
            if self.aware[f]:
                shortfall = max(0.0, model.gap[f] - self.slack)
                utility[f] = (-self.price_weight * model.log_price[f] - self.distrust * model.foreign[f]
                              - 0.4 * shortfall + model.peer_weight * work[f])
        top = max(utility.values())
        weights = {f: math.exp(u - top) for f, u in utility.items()}
        total = sum(weights.values())
        kept = {f: w / total for f, w in weights.items() if w / total >= MIN_SHARE or w == 1.0}
        kept_total = sum(kept.values())
        self.shares = [kept.get(f, 0.0) / kept_total for f in range(N_FAMILIES)]


class ReferenceModel(mesa.Model):
    """n_agents choosers on a random graph of mean degree 8, stepped one by one in random order."""

    def __init__(self, n_agents: int = 10_000, rng: int = 0):
        super().__init__(rng=rng)
        self.external, self.internal, self.switch_rate, self.peer_weight = 0.05, 0.4, 0.2, 1.0
        self.log_price = [math.log(0.2 + 0.5 * f) for f in range(N_FAMILIES)]
        self.foreign = [f % 3 == 0 for f in range(N_FAMILIES)]
        self.gap = [2.0 * f for f in range(N_FAMILIES)]
        graph = nx.gnm_random_graph(n_agents, 4 * n_agents, seed=rng)
        self.grid = Network(graph, capacity=1, random=self.random, layout=None)
        for node in range(n_agents):
            agent = Chooser(self, self.random.lognormvariate(0, 0.25), self.random.uniform(0, 2),
                            self.random.uniform(0, 20))
            agent.cell = self.grid[node]
        for agent in self.agents:  # neighbours looked up once: the network does not change
            agent.neighbours = [cell.agents[0] for cell in agent.cell.neighborhood if cell.agents]

    def step(self):
        self.agents.shuffle_do("step")
