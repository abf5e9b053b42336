"""The month's agent phases written as textbook NumPy over the agents-by-families matrices: the reference the
compiled kernels (sim/core/kernels.py) are checked against in tests/test_kernels.py. Not used by the model.

Each function takes a DiffusionModel and does what the model's method of the same name does, reading the same
draws from the same generators in the same order."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from sim.core.agents import LICENCE_PENALTY
from sim.core import kernels
from sim.core.catalogue import TIERS
from sim.core.model import CAPABILITY_SCALE
from sim.core.population import REGION_MARKETPLACE, REGIONS, SEGMENTS, USES


def logit_shares(utility: np.ndarray, options: np.ndarray, min_share: float) -> np.ndarray:
    """Multinomial-logit split over the allowed options, row by row; shares below `min_share` are dropped (never
    the top one) and the rest renormalised; a row without options, or with a NaN utility, gets zeros."""
    u = np.where(options, utility.astype(np.float32), np.float32(-np.inf))
    top = u.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    weights = np.exp(u - top)
    total = weights.sum(axis=1, keepdims=True)
    has_option = (total > 0)[:, 0]
    shares = np.zeros_like(weights)
    shares[has_option] = weights[has_option] / total[has_option]
    best = shares.max(axis=1, keepdims=True)
    shares[(shares < min_share) & (shares < best)] = 0.0
    total = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, total, out=shares, where=total > 0)


def neighbour_means(model, rows=slice(None), cols=slice(None)) -> np.ndarray:
    """Mean over each agent's neighbours of [uses family f (0/1) ..., share of work on f ...], from the graph
    itself (complete mixing: demand-weighted population means)."""
    weight = model.population.weight
    stacked = np.hstack([model.work > 0, model.work])
    if model.base_params["network"] == "complete":
        mean = weight @ stacked / weight.sum()
        return np.broadcast_to(mean[cols], (len(model.work[rows]), len(mean[cols]))).astype(np.float32)
    sums = np.asarray(model.graph @ stacked, dtype=np.float32)
    return sums[rows, cols] * model.inverse_degree[rows, None]


def spread_awareness(model) -> None:
    p = model.params
    n_families = len(model.families)
    draws = model._awareness_rng.random((len(model.work), n_families), dtype=np.float32)
    if model.month == model.start_month:
        model.aware[:, model.released] = draws[:, model.released] < p["initial_awareness"]
        return
    external = model.external_awareness()  # per family, the model's own rule
    using = neighbour_means(model, cols=slice(0, n_families))
    keep_unaware = (1 - np.float32(p["awareness_internal"]) * using) * (1 - external).astype(np.float32)
    model.aware |= (draws > keep_unaware) & model.released


def utility(model, rows: np.ndarray) -> np.ndarray:
    p, pop = model.params, model.population
    log_cost = np.log(model.price_by_region)[pop.region[rows]] + np.outer(model.log_selfhost_discount[rows],
                                                                           model.is_open)
    licence = np.array([LICENCE_PENALTY[x] for x in model.licence])
    firms_weigh_origin = model.base_params["firm_origin_trust"] and pop.is_firm[rows]  # ODD 7.4, trust
    trust_weight = np.where(pop.regulated[rows] | firms_weigh_origin, p["regulated_trust_multiplier"], 1.0)
    u = -p["price_sensitivity"] * pop.price_weight[rows, None] * log_cost
    u -= p["licence_weight"] * np.outer(pop.licence_friction[rows], licence)
    u += p["openness_weight"] * np.outer(pop.open_need[rows], model.is_open)
    penalty = model.trust_matrix()[:, model.origin][pop.region[rows]]
    u -= np.where(penalty > 0, penalty * trust_weight[:, None], penalty)  # a preference is not multiplied
    u += p["ecosystem_weight"] * model.ecosystem()
    u += p["peer_weight"] * neighbour_means(model, rows, slice(len(model.families), None))
    return u.astype(np.float32)


def habit_choice(probabilities: np.ndarray, current: np.ndarray, switching_cost: float,
                 draws: np.ndarray) -> np.ndarray:
    """Family of each workload after re-evaluation (docs/ODD.md 7.4): probabilities rows x families (the logit
    without the bonus, p_f), current and draws rows x workloads. A workload on g stays with chance
    b p_g / (1 + (b - 1) p_g), b = exp(switching_cost), else moves to f != g with chance proportional to p_f, read
    off the cumulative sum of the others' probabilities at the draw beyond the stay; -1 for a row without options."""
    n_families = probabilities.shape[1]
    g = np.maximum(current, 0).astype(np.int64)
    p_g = np.take_along_axis(probabilities, g, axis=1) * (current >= 0)
    bonus = np.float32(np.exp(switching_cost))
    stay = bonus * p_g / (1 + (bonus - 1) * p_g)
    leave = np.clip((draws - stay) / np.maximum(1 - stay, np.float32(1e-12)), 0, 1) * (1 - p_g)
    on = np.where(current >= 0, g, -1)  # the family a workload runs on, or -1
    others = np.where(np.arange(n_families) == on[..., None], np.float32(0.0), probabilities[:, None, :])
    cumulative = np.cumsum(others, axis=2, dtype=np.float32)
    moved = np.minimum((cumulative <= leave[..., None]).sum(axis=2), n_families - 1)
    last = n_families - 1 - np.argmax((others > 0)[..., ::-1], axis=2)  # rounding past the last option
    moved = np.where(np.take_along_axis(others, moved[..., None], axis=2)[..., 0] > 0, moved, last)
    chosen = np.where(draws < stay, g, moved)
    chosen[(others > 0).sum(axis=2) == 0] = g[(others > 0).sum(axis=2) == 0]  # a single option stays
    chosen[probabilities.sum(axis=1) == 0] = -1
    return chosen


_SPLITMIX = tuple(np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's output function on a uint64 array (wrapping arithmetic)."""
    gamma, mix_1, mix_2 = _SPLITMIX
    z = x + gamma
    z = (z ^ (z >> np.uint64(30))) * mix_1
    z = (z ^ (z >> np.uint64(27))) * mix_2
    return z ^ (z >> np.uint64(31))


def task_fit_normals(key, agent, workload, family) -> np.ndarray:
    """Standard normals fixed by (run key, agent, workload key, family), broadcast: three splitmix64 rounds give
    two 53-bit uniforms, Box-Muller one normal (docs/ODD.md 7.4, task-specific capability)."""
    as_key = [np.asarray(x).astype(np.uint64) for x in (agent, workload, family)]
    h = splitmix64(np.uint64(key) ^ as_key[0])
    h = splitmix64(h ^ as_key[1])
    h = splitmix64(h ^ as_key[2])
    u1 = ((h >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
    u2 = (splitmix64(h) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def family_utilities(model, rows: np.ndarray):
    """Each family's utility before the capability need of a use (flagship tier), and a function of a use's
    slack (rows x 1) and optionally a workload's task fit (rows x families, ECI points added to the capability of
    each of the family's tiers) giving the nested-logit log-sum over the tiers each family offers (tiers not offered left out)
    and each tier's share of its family (rows x tier x family)."""
    p, pop = model.params, model.population
    gap = (model.frontier - model.tier_capability).astype(np.float32)  # family x tier
    quality, capability = np.float32(p["quality_weight"] / CAPABILITY_SCALE), np.float32(p["capability_weight"]
                                                                                     / CAPABILITY_SCALE)
    base = utility(model, rows) - quality * gap[:, 0]
    log_price = np.log(model.tier_price_by_region / model.price_by_region[..., None]).astype(np.float32)
    price_term = (-p["price_sensitivity"] * pop.price_weight[rows]).astype(np.float32)

    tier_base = (base[:, None, :] + price_term[:, None, None] * log_price[pop.region[rows]].transpose(0, 2, 1)
                 - quality * (gap.T - gap[:, 0]))  # rows x tier x family
    offered = np.vstack([np.ones(len(model.families), bool), model.tier_offered.T])  # tier x family

    def per_use(slack: np.ndarray, fit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        seen_slack = slack[:, :, None] if fit is None else slack[:, :, None] + fit[:, None, :]
        tiers = tier_base - np.maximum(gap.T - seen_slack, np.float32(0.0)) * capability
        log_sum = logsumexp(tiers, axis=1, b=offered[None]).astype(np.float32)
        shares = np.where(offered, np.exp(tiers - log_sum[:, None]), np.float32(0.0)).astype(np.float32)
        return (log_sum if fit is None else log_sum + quality * fit), shares  # quality: the same for every tier

    return base, per_use


def workload_split(model, rows: np.ndarray, options: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each workload on one family by `habit_choice` over the logit for its own need; shares are the
    use-mix-weighted fractions of an agent's workloads, with their cheaper tiers' parts; and their part in each
    use. Updates model.workload_family."""
    p, pop = model.params, model.population
    base, per_use_utility = family_utilities(model, rows)
    per_use = model.workloads_per_use[rows]
    draws = model.workload_draws()
    shares = np.zeros((len(TIERS),) + base.shape, np.float32)
    by_use = np.zeros((len(USES),) + base.shape, np.float32)
    for k in range(len(USES)):
        weight = pop.use_mix[rows, k].astype(np.float32) / per_use.astype(np.float32)
        for j in range(model.workload_family.shape[2]):
            fit = None
            if p["task_fit_sd"] > 0:
                normals = task_fit_normals(model.task_fit_key, rows[:, None], k * kernels.WORKLOAD_STRIDE + j,
                                           np.arange(base.shape[1])[None, :])
                fit = (np.float64(np.float32(p["task_fit_sd"])) * normals).astype(np.float32)
            utility_of_use, tier_share = per_use_utility(model.workload_slack[rows, k, j, None], fit)
            probability = logit_shares(utility_of_use, options, 0.0)
            chosen = habit_choice(probability, model.workload_family[rows, k, j, None], p["switching_cost"],
                                  draws[rows, k, j, None])[:, 0]
            chosen[j >= per_use] = -1
            model.workload_family[rows, k, j] = chosen
            placed = np.flatnonzero(chosen >= 0)
            np.add.at(shares[0], (placed, chosen[placed]), weight[placed])
            for t in range(1, len(TIERS)):
                np.add.at(shares[t], (placed, chosen[placed]), weight[placed] * tier_share[placed, t, chosen[placed]])
            np.add.at(by_use[k], (placed, chosen[placed]), weight[placed])
    return shares.transpose(1, 0, 2), by_use.transpose(1, 0, 2)


def split_and_uses(model, rows: np.ndarray, options: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows x (share of work, its cheaper tiers' parts) x families, and rows x (its part in each use) x families."""
    if model.workload_family.shape[2]:
        return workload_split(model, rows, options)
    p, pop = model.params, model.population
    base, per_use_utility = family_utilities(model, rows)
    shares = np.zeros((len(rows), len(TIERS), base.shape[1]), np.float32)
    by_use = np.zeros((len(rows), len(USES), base.shape[1]), np.float32)
    for k in range(pop.use_slack.shape[1]):
        utility_of_use, tier_share = per_use_utility(pop.use_slack[rows, k, None])
        split = logit_shares(utility_of_use, options, p["min_share"]) * pop.use_mix[rows, k, None].astype(np.float32)
        shares[:, 0] += split
        shares[:, 1:] += split[:, None] * tier_share[:, 1:]
        by_use[:, k] = split
    return shares, by_use


def work_split(model, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
    """Rows x (share of work, its cheaper tiers' parts) x families."""
    return split_and_uses(model, rows, options)[0]


def choose(model) -> None:
    p, pop = model.params, model.population
    routing = (np.array([s.marketplace_share for s in SEGMENTS])[pop.segment]
               * np.array(list(REGION_MARKETPLACE.values()))[pop.region] * p["marketplace_routing"])
    model.uses_marketplace = pop.marketplace_propensity < np.minimum(1.0, routing)
    switch_rate = np.where(pop.is_firm, p["switch_rate_firm"], p["switch_rate_developer"])
    due = (model._switch_rng.random(len(model.work)) < switch_rate) | (model.month == model.start_month)
    model._workload_month_state = model._workload_rng.bit_generator.state  # model.workload_draws() reads them
    model._workload_rng.random(model.workload_family.shape, dtype=np.float32)
    used = model.work > 0
    allowed = model.available()
    options = model.aware & allowed
    due |= ~model.active & options.any(axis=1)
    due |= ((model.work > 0) & ~allowed).any(axis=1)
    if not p["choice"]:
        counts = options.sum(axis=1, keepdims=True)
        rows = np.arange(len(model.work))
        shares = np.divide(options, counts, out=np.zeros(options.shape, np.float32), where=counts > 0)
        model.tier_work[rows] = 0.0
    else:
        rows = np.flatnonzero(due)
        split, by_use = split_and_uses(model, rows, options[rows])
        shares = split[:, 0]
        model.tier_work[rows] = split[:, 1:]
        if len(model.use_work):  # without workloads the split by use is kept
            model.use_work[rows] = by_use
    model.work[rows] = shares
    model.active[rows] = shares.any(axis=1)
    record_adoptions(model, used, model.work > 0)
    model._neighbour_sums[:] = np.asarray(model.graph @ np.hstack([model.work > 0, model.work]), np.float32)
    model.usage = usage_by_group(model)


def usage_by_group(model) -> dict[str, np.ndarray]:
    pop = model.population
    weight, work = pop.weight, model.work.astype(float)
    us_firms = pop.is_firm & (pop.region == REGIONS.index("north_america"))
    tiers = model.tier_work.astype(float)  # agents x cheaper tier x family
    usage = {"all": weight @ work, "builders": (weight * pop.is_builder) @ work,
             "us_firms": (weight * us_firms) @ work,
             "us_firms_tiers": np.einsum("a,atf->tf", weight * us_firms, tiers)}
    usage.update({f"region_{r}": (weight * (pop.region == i)) @ work for i, r in enumerate(REGIONS)})
    n_families = len(model.families)
    direct = model.availability.reshape(-1, n_families)
    comes_for_resale = (model.marketplace_availability.reshape(-1, n_families) & ~direct).any(axis=1)
    routed = np.where(comes_for_resale[:, None] & direct, model.params["marketplace_home_share"], 1.0)
    market = np.flatnonzero(model.uses_marketplace)
    routed_work = work[market] * routed[model.cell[market]]
    routed_tiers = tiers[market] * routed[model.cell[market], None]
    by_region = [pop.region[market] == r for r in range(len(REGIONS))]
    model.marketplace_by_region = np.stack([weight[market][r] @ routed_work[r] for r in by_region])
    model.marketplace_tiers_by_region = np.stack([np.einsum("a,atf->tf", weight[market][r], routed_tiers[r])
                                                  for r in by_region])
    usage["marketplace"] = weight[market] @ routed_work
    usage["marketplace_tiers"] = np.einsum("a,atf->tf", weight[market], routed_tiers)
    routed_by_use = split_by_use(model)[market] * routed[model.cell[market], None, :]
    usage["marketplace_by_use"] = np.einsum("a,auf->uf", weight[market], routed_by_use)
    return usage


def split_by_use(model) -> np.ndarray:
    """Agents x uses x families: each agent's work in each use, from the state that keeps it (the workloads'
    families; without workloads the stored split; without choice the even split in every use); inactive agents
    none."""
    pop = model.population
    if not model.params["choice"]:
        split = pop.use_mix[:, :, None] * model.work[:, None, :]
    elif model.workload_family.shape[2]:
        split = np.zeros((len(model.work), len(USES), len(model.families)))
        agent, use, slot = np.nonzero(model.workload_family >= 0)
        share = pop.use_mix[agent, use].astype(np.float32) / model.workloads_per_use[agent].astype(np.float32)
        np.add.at(split, (agent, use, model.workload_family[agent, use, slot]), share)
    else:
        split = model.use_work.astype(float)
    return split * model.active[:, None, None]


def record_adoptions(model, used: np.ndarray, uses: np.ndarray) -> None:
    """Date each (agent, family) pair that starts, forget those that end, and record the demand weight of this
    month's new pairs among marketplace agents (retention, OR14)."""
    started = uses & ~used
    model.adopted_month[started] = model.month
    model.adopted_month[used & ~uses] = -1
    model.new_pairs_weight[model.month] = float((model.population.weight * model.uses_marketplace)
                                                @ started.sum(axis=1))
