"""Agents: model users (developers and firms) and the labs that release and price model families.

The monthly decision of all users is computed at once on arrays in DiffusionModel (one implementation of each
rule, fast enough for a million agents). Each Developer or Firm is a Mesa agent that reads its own row of those
arrays, so it can be inspected, sampled by the browser view and placed on the Mesa network space.
Labs are few and act one by one through Mesa's AgentSet.
"""

from __future__ import annotations

import math

import numpy as np
from mesa import Agent
from mesa.discrete_space import FixedAgent

from sim.core.calendar import parse_month
from sim.core.catalogue import INCUMBENT, TIERS, Family, frontier_trend, release_rate_per_year, releases
from sim.core.population import REGIONS, SEGMENT_NAMES, USES
from sim.core.shocks import family_modifiers

LICENCE_PENALTY = {"permissive": 0.0, "conditional": 0.5, "research": 2.0, "closed": 0.0}  # ASSUMPTION
LICENCE_DERIVATIVE_FACTOR = {"permissive": 1.0, "conditional": 0.6, "research": 0.2, "closed": 0.0}  # ASSUMPTION


class ModelUser(FixedAgent):
    """A developer or firm; its state lives in row `index` of the model's arrays."""

    def __init__(self, model, index: int):
        super().__init__(model)
        self.index = index

    @property
    def region(self) -> str:
        return REGIONS[self.model.population.region[self.index]]

    @property
    def segment(self) -> str:
        return SEGMENT_NAMES[self.model.population.segment[self.index]]

    @property
    def weight(self) -> float:
        """Share of world token demand this agent stands for."""
        return float(self.model.population.weight[self.index])

    @property
    def use_mix(self) -> dict[str, float]:
        """Shares of this agent's work in coding, chat/roleplay and agents."""
        return dict(zip(USES, map(float, self.model.population.use_mix[self.index])))

    @property
    def workload(self) -> dict[str, float]:
        """Share of this agent's work done with each family it uses."""
        row = self.model.work[self.index]
        return {name: float(share) for name, share in zip(self.model.family_names, row) if share > 0}

    @property
    def primary_family(self) -> str | None:
        row = self.model.work[self.index]
        return self.model.family_names[int(np.argmax(row))] if row.sum() > 0 else None

    @property
    def aware_of(self) -> list[str]:
        return [n for n, known in zip(self.model.family_names, self.model.aware[self.index]) if known]


class Developer(ModelUser):
    """Hobbyists, startups and app builders: price-sensitive, quicker to switch, some publish derivatives."""


class Firm(ModelUser):
    """Enterprises by size and sector: slower (procurement cycles), weigh trust and licences more."""


class Lab(Agent):
    """A lab and its model family: follows the release catalogue, then releases stochastically.

    A catalogue release brings its capability as the run drew it (imputed ones vary, DiffusionModel.release_capability).
    After the catalogue ends, a release comes with probability (family's 2024-2025 release rate x
    release_pace / 12) a month; its capability is the closed-frontier trend delayed by the lab's lag, plus
    noise. Prices fall at the open or closed yearly rate. Scenario shocks scale prices and release rates, shift capability or change the licence.
    A family's standard line (Sonnet, GPT-4o / 4.1 / 5, Gemini Pro) and efficient line (mini, Haiku, Flash, small open
    sizes) are followed as cheaper tiers by the same rule; after the catalogue each keeps its gap to the flagship and
    its prices fall at the same rate (docs/ODD.md 7.9).
    A hindcast's `catalogue_cutoff` ends the catalogue early: the releases, frontier trend and release rates are
    then those known by the cutoff (sim/core/catalogue.py), and a family not yet released by then never releases.
    """

    def __init__(self, model, family: Family, rng: np.random.Generator):
        super().__init__(model)
        self.family = family
        self.base_capability = math.nan  # best ECI released so far (the flagship tier)
        self.base_price = math.nan
        # The cheaper tiers (docs/ODD.md 7.9; TIERS[1:]): the best release so far of each cheaper line, by the same
        # rule; a tier is offered only while cheaper than the flagship (NaN before the line's first release). Lines
        # not followed (`price_tiers` off; the standard line with `standard_tier` off) stay NaN.
        self.line_capability = {tier: math.nan for tier in TIERS[1:]}
        self.line_price = {tier: math.nan for tier in TIERS[1:]}
        params = model.base_params
        self.followed_lines = (() if not params["price_tiers"] else TIERS[1:] if params["standard_tier"]
                               else ("efficient",))
        self.base_licence = "closed" if not family.open_weights else "permissive"
        self.released = False
        self.released_this_month = False
        self.index = model.family_names.index(family.name)  # the family's column in the model's arrays
        self.cutoff = model.base_params["catalogue_cutoff"] or None
        self._catalogue = [r for r in releases(self.cutoff) if r.family == family.name]
        self._modifiers = family_modifiers((), family.name, 0)
        self.stream = rng  # the lab's own stream, so scenarios that change other labs leave its draws alone

    # Cumulative counters: the model owns them (DiffusionModel._publish_and_download); a lab reads its entry.
    @property
    def derivatives_cum(self) -> float:
        return self.model.derivatives_cum[self.index]

    @property
    def downloads_cum(self) -> float:
        return self.model.downloads_cum[self.index]

    # Effective state, with scenario shocks applied.
    @property
    def capability(self) -> float:
        return self.base_capability + self._modifiers["capability_shift"]

    @property
    def price(self) -> float:
        return self.base_price * self._modifiers["price_factor"]

    @property
    def licence(self) -> str:
        return self._modifiers["licence"] or self.base_licence

    @property
    def tier_offered(self) -> tuple[bool, ...]:
        """Whether the family offers each cheaper tier (TIERS[1:]): its line has released and is cheaper than the
        flagship (a release of the line that is the family's best is the flagship itself)."""
        return tuple(self.line_price[tier] < self.base_price for tier in TIERS[1:])

    @property
    def tier_capability(self) -> tuple[float, ...]:
        """Capability of each tier (TIERS); a tier the family does not offer is the flagship."""
        shift = self._modifiers["capability_shift"]
        return self.capability, *(self.line_capability[tier] + shift if offered else self.base_capability + shift
                                  for tier, offered in zip(TIERS[1:], self.tier_offered))

    @property
    def tier_price(self) -> tuple[float, ...]:
        """Price of each tier (TIERS); a tier the family does not offer is the flagship."""
        factor = self._modifiers["price_factor"]
        return self.price, *((self.line_price[tier] if offered else self.base_price) * factor
                             for tier, offered in zip(TIERS[1:], self.tier_offered))

    @staticmethod
    def _better(capability: float, price: float, best: float, best_price: float) -> tuple[float, float]:
        """A line's (capability, price) after a release: a more capable release brings its price (if known)."""
        if math.isnan(best) or capability > best:
            best, best_price = capability, price if not math.isnan(price) else best_price
        return best, price if math.isnan(best_price) else best_price

    def adopt_release(self, capability: float, price: float, licence: str, line: str | None = None) -> None:
        """A release raises the family's capability if better; its price becomes the family's price then. A
        release of a followed cheaper line (catalogue.LINES) does the same for that line's tier (docs/ODD.md 7.9);
        `line` None: the flagship only."""
        self.released = self.released_this_month = True
        self.base_licence = licence
        self.base_capability, self.base_price = self._better(capability, price, self.base_capability,
                                                             self.base_price)
        if line in self.followed_lines:
            self.line_capability[line], self.line_price[line] = self._better(
                capability, price, self.line_capability[line], self.line_price[line])

    def step(self) -> None:
        model = self.model
        month = model.month
        self.released_this_month = False
        self._modifiers = family_modifiers(model.shocks, self.family.name, month)
        trend = frontier_trend(self.cutoff)
        # Draw every month whether or not it is used, so each lab's stream stays aligned across scenarios.
        release_draw, noise_draw = self.stream.random(), self.stream.normal()
        if month <= parse_month(trend.end):
            for r in self._catalogue:
                due = parse_month(r.date) == month or (month == model.start_month and parse_month(r.date) < month)
                if due and not (math.isnan(r.capability) and math.isnan(r.price)):
                    self.adopt_release(model.release_capability[r], r.price, r.licence, r.tier)
            if month == model.start_month and self.family.name == INCUMBENT and not self.released:
                first = self._catalogue[0]
                self.adopt_release(model.release_capability[first], first.price, first.licence)
            return
        params = model.params
        years_after = (month - parse_month(trend.end)) / 12
        side = "open" if self.family.open_weights else "closed"
        decline = params[f"price_decline_{side}"] * params["price_decline_factor"]
        monthly = max(0.0, 1 - min(decline, 0.99)) ** (1 / 12)
        self.base_price *= monthly
        for tier in TIERS[1:]:  # every tier's price falls at the family's rate
            self.line_price[tier] *= monthly
        rate = (release_rate_per_year(self.family.name, self.cutoff) / 12 * params["release_pace"]
                * self._modifiers["release_rate_factor"])
        if release_draw < min(rate, 1.0):
            lag = params[f"{self.family.lag_class}_lag_months"]
            frontier = trend.level_at_end + params["frontier_growth"] * years_after + params["frontier_shift"]
            capability = frontier - params["frontier_growth"] * lag / 12 + noise_draw * params["capability_noise"]
            # Each cheaper tier keeps its capability gap to the flagship: it rises as much as the flagship does.
            for tier in TIERS[1:]:
                self.line_capability[tier] += max(0.0, capability - self.base_capability)
            self.adopt_release(capability, self.base_price, self.base_licence)
