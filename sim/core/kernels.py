"""Compiled kernels of the monthly step: one pass over the agents' rows per phase of the month.

DiffusionModel (sim/core/model.py) keeps everything that is per family, per region or per cell in small NumPy arrays
(prices, capability gaps, trust penalties, ecosystem terms, availability) and draws all random numbers with
NumPy's generators, in the same order whatever the scenario; these kernels only combine them with each agent's
row, so a change to how a family quantity is built never touches them.

Arithmetic follows the NumPy formulation it replaced operation by operation (float32 where that used float32,
the same order of additions, NumPy's pairwise summation of a row, the sparse product's order for neighbours'
sums). Two things differ, both at float32 rounding: exp is the C library's float32 exp, where NumPy uses its
own SIMD exp (the two differ in the last bit for about 4 arguments in 10), and group sums are accumulated in
float64 per stratum (cell x builder x marketplace) instead of a float32 BLAS product, so they no longer depend
on the BLAS build or its number of threads. tests/test_kernels.py checks each kernel against the textbook NumPy
formulas, month by month, and states the bounds.

Compiled with `cache=True`: the first call on a machine (or in a fresh clone) compiles, about 15-20 s, and
writes the machine code beside this file in __pycache__; every later process, worker or test run loads it
(about 1 s per process).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

# Where the package is installed read-only, the compiled kernels are cached in the temporary directory (unless
# NUMBA_CACHE_DIR says where).
if "NUMBA_CACHE_DIR" not in os.environ and not os.access(Path(__file__).parent, os.W_OK):
    os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "odsim-numba-cache")

import numba  # noqa: E402
import numpy as np  # noqa: E402

PAIRWISE_BLOCK = 128  # NumPy's PW_BLOCKSIZE: up to it, a row sum uses eight interleaved partial sums (row_sum)

# Without Numba's reference-counted runtime (_nrt=False): every array a kernel uses is allocated by the caller, and
# passing arrays to the per-agent helpers costs no atomic reference counting (a fifth of the step's time with it).
_compile = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", _nrt=False)
# Helpers called once per agent are inlined into the kernels.
_inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", _nrt=False, inline="always")


# splitmix64's constants (Steele, Lea and Flood 2014), for the task-fit hash (task_fit_normal)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0 ** -53  # a 53-bit integer to [0, 1)
WORKLOAD_STRIDE = 1 << 16  # task-fit key of workload w of use k: k * WORKLOAD_STRIDE + w, whatever the slot count


@_inline
def splitmix64(x):
    """splitmix64's output function on the uint64 `x` (after adding the golden gamma): a bijection whose bits are
    well mixed, so hashing a counter gives independent-looking numbers without a stream."""
    z = x + _GOLDEN_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@_inline
def task_fit_normal(key, agent, workload, family):
    """A standard normal fixed by (run key, agent index, workload key, family) (docs/ODD.md 7.4, task-specific
    capability): the hash of the counters gives two uniforms, Box-Muller one normal (float64). Drawn where it is
    used, so no agents x workloads x families array is stored and no stream is touched."""
    h = splitmix64(key ^ np.uint64(agent))
    h = splitmix64(h ^ np.uint64(workload))
    h = splitmix64(h ^ np.uint64(family))
    u1 = np.float64((h >> np.uint64(11)) + np.uint64(1)) * _TO_UNIT  # (0, 1]: log is finite
    u2 = np.float64(splitmix64(h) >> np.uint64(11)) * _TO_UNIT
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@_compile
def task_fit_normals(key, agents, workloads, families, out):
    """`task_fit_normal` for each (agents[j], workloads[j], families[j]) (tests and the reference)."""
    for j in range(out.size):
        out[j] = task_fit_normal(key, agents[j], workloads[j], families[j])


@_inline
def row_sum(row):
    """Sum of a float32 row in NumPy's pairwise order (numpy add.reduce on a contiguous row of < 128 items)."""
    n = row.size
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += row[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += row[i]
        r1 += row[i + 1]
        r2 += row[i + 2]
        r3 += row[i + 3]
        r4 += row[i + 4]
        r5 += row[i + 5]
        r6 += row[i + 6]
        r7 += row[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += row[i]
        i += 1
    return res


@_inline
def logit_split(utility, option, n_options, min_share, out):
    """Multinomial-logit split of one agent's work over its options (the families `option[:n_options]`), into
    `out` (float32, zero elsewhere): shares below `min_share` are dropped unless top and the rest renormalised;
    no option or a NaN utility gives zeros. Sums run over the whole row, in NumPy's order."""
    out[:] = 0.0
    top = np.float32(-np.inf)
    for j in range(n_options):
        u = utility[option[j]]
        if u != u:
            return
        top = max(top, u)
    if not math.isfinite(top):
        top = np.float32(0.0)
    for j in range(n_options):
        f = option[j]
        out[f] = math.exp(utility[f] - top)
    total = row_sum(out)
    if not total > 0:
        out[:] = 0.0
        return
    best = np.float32(1.0) / total  # the top option's share: exp(0) / total
    for j in range(n_options):
        f = option[j]
        share = out[f] / total
        out[f] = np.float32(0.0) if (share < min_share and share < best) else share
    total = row_sum(out)
    if total > 0:
        for j in range(n_options):
            f = option[j]
            out[f] = out[f] / total


@_compile
def spread_awareness(aware, draws, released, neighbour_sums, inverse_degree, mean_use, complete, keep_external,
                     internal):
    """Bass awareness for every agent and released family: stays unaware with probability (1 - external) x
    (1 - internal x share of neighbours using the family); `complete` uses the population means `mean_use`."""
    n, n_families = aware.shape
    minus_internal = np.float32(-internal)
    for i in range(n):
        inverse = inverse_degree[i]
        for f in range(n_families):
            if not released[f] or aware[i, f]:
                continue
            using = mean_use[f] if complete else neighbour_sums[i, f] * inverse
            keep_unaware = using * minus_internal
            keep_unaware += np.float32(1.0)
            keep_unaware *= keep_external[f]
            if draws[i, f] > keep_unaware:
                aware[i, f] = True


@_inline
def peer_shares(i, peers, family, n_listed, out):
    """Agent i's mean over its neighbours of the share of work each puts on the families `family[:n_listed]`
    (population means under complete mixing), float32 as the step keeps them."""
    neighbour_sums, inverse_degree, complete, mean_share = peers
    n_families = out.size
    for j in range(n_listed):
        f = family[j]
        out[f] = mean_share[f] if complete else neighbour_sums[i, n_families + f] * inverse_degree[i]


@_inline
def utility(i, agents, terms, peer_share, family, n_listed, out):
    """Agent i's utility of the families `family[:n_listed]`, all terms but the capability need of a use
    (docs/ODD.md, "Choice"): per-family and per-region terms come from `terms`, computed by the model; float64
    in the reference's order of operations, rounded to float32."""
    region, price_weight, log_selfhost_discount, licence_friction, open_need, regulated = agents[:6]
    (log_price, is_open, licence_penalty, trust_penalty, family_term, price_sensitivity, licence_weight,
     openness_weight, regulated_trust_multiplier, peer_weight) = terms[:10]
    r = region[i]
    price_term = -price_sensitivity * price_weight[i]
    selfhost = log_selfhost_discount[i]
    friction, need = licence_friction[i], open_need[i]
    trust_weight = regulated_trust_multiplier if regulated[i] else 1.0
    for j in range(n_listed):
        f = family[j]
        u = price_term * (log_price[r, f] + selfhost * is_open[f])
        u -= licence_weight * (friction * licence_penalty[f])
        u += openness_weight * (need * is_open[f])
        # A firm's procurement multiplies an origin penalty, never a preference (docs/ODD.md 7.4, trust).
        penalty = trust_penalty[r, f]
        u -= penalty * trust_weight if penalty > 0.0 else penalty
        u += family_term[f]
        u += np.float64(peer_weight * peer_share[f])
        out[f] = np.float32(u)


@_inline
def use_utilities(i, agents, terms, base, slack, option, n_options, per_use, tier_share, fit, has_fit):
    """Agent i's utility of each option for one use whose capability need leaves `slack` ECI points below the
    frontier: the family's `base` utility less the shortfall below the need, for each tier the family offers,
    combined over its tiers by a log-sum (docs/ODD.md 7.9); and each cheaper tier's share of the family in this use
    (`tier_share`, cheaper tier x family). A family offering only its flagship has the flagship's utility and
    cheaper tiers' shares 0. Each cheaper tier's utility is kept in `tier_share` until the log-sum is known. With
    `has_fit`, the workload sees each family's capability (all its tiers) `fit[f]` ECI points higher (task-specific
    capability, docs/ODD.md 7.4): its slack is larger by fit[f] in the shortfall, and the quality term, the same for
    every tier of the family, is added to the log-sum afterwards (the tiers' shares do not depend on it)."""
    gap, quality_per_point, capability_per_point = terms[10], terms[11], terms[12]
    tier_log_price, tier_gap, tier_offered = terms[15], terms[16], terms[17]
    region, price_weight = agents[0], agents[1]
    price_term = np.float32(-terms[5] * price_weight[i])
    r = region[i]
    n_cheaper = tier_gap.shape[1]
    for j in range(n_options):
        f = option[j]
        slack_f = slack + fit[f] if has_fit else slack
        quality_fit = quality_per_point * fit[f] if has_fit else np.float32(0.0)
        flagship = base[f] - max(gap[f] - slack_f, np.float32(0.0)) * capability_per_point
        top = flagship
        offers_more = False
        for t in range(n_cheaper):
            tier_share[t, f] = 0.0
            if tier_offered[f, t]:
                u = base[f] + price_term * tier_log_price[r, f, t]
                u -= quality_per_point * (tier_gap[f, t] - gap[f])
                u -= max(tier_gap[f, t] - slack_f, np.float32(0.0)) * capability_per_point
                tier_share[t, f] = u
                top = max(top, u)
                offers_more = True
        if not offers_more:
            per_use[f] = flagship + quality_fit if has_fit else flagship
            continue
        total = math.exp(flagship - top)
        for t in range(n_cheaper):
            if tier_offered[f, t]:
                total += math.exp(tier_share[t, f] - top)
        per_use[f] = top + math.log(total)
        if has_fit:
            per_use[f] += quality_fit
        for t in range(n_cheaper):
            if tier_offered[f, t]:
                tier_share[t, f] = math.exp(tier_share[t, f] - top) / total


@_inline
def work_split(i, options, agents, terms, peers, area, option, out, by_use):
    """Agent i's split of work over its `options` (a row of booleans) into out[0], and the part of it on each
    family's cheaper tiers into out[1:] (TIERS order): a logit choice per use (coding, chat/roleplay, agents; its
    capability need decides which families and tiers serve it), weighted by the agent's use mix; the part of the
    split in each use into `by_use` (uses x families). `area` is a (4 + tiers, families) float32 and `option` a
    (families,) integer work area."""
    n_tiers, n_families = out.shape
    n_options = 0
    for f in range(n_families):
        for t in range(n_tiers):
            out[t, f] = 0.0
        for k in range(by_use.shape[0]):
            by_use[k, f] = 0.0
        if options[f]:
            option[n_options] = f
            n_options += 1
    if n_options == 0:
        return
    use_slack, use_mix = agents[6], agents[7]
    gap, quality_per_point, min_share, switching_bonus = terms[10], terms[11], terms[13], terms[14]
    peer_share, base, per_use, split, fit, tier_share = area[0], area[1], area[2], area[3], area[4], area[5:]
    peer_shares(i, peers, option, n_options, peer_share)
    utility(i, agents, terms, peer_share, option, n_options, base)
    for j in range(n_options):
        f = option[j]
        base[f] = base[f] - quality_per_point * gap[f]
    workloads_per_use, workload_slack, workload_family = agents[8], agents[9], agents[10]
    workload_draws, first_draw_row = agents[11], agents[12]
    task_fit_sd, task_fit_key = terms[18], terms[19]
    has_fit = task_fit_sd > 0
    n_workloads = workloads_per_use[i]
    if n_workloads > 0:  # workloads (docs/ODD.md 7.4): each on one family, by the logit with a switching cost
        for k in range(use_slack.shape[1]):
            share = use_mix[i, k] / np.float32(n_workloads)
            for w in range(n_workloads):
                if has_fit:  # the workload's persistent fit to each family (task-specific capability)
                    for j in range(n_options):
                        f = option[j]
                        fit[f] = np.float32(task_fit_sd * task_fit_normal(task_fit_key, i, k * WORKLOAD_STRIDE + w,
                                                                          f))
                use_utilities(i, agents, terms, base, workload_slack[i, k, w], option, n_options, per_use,
                              tier_share, fit, has_fit)
                logit_split(per_use, option, n_options, np.float32(0.0), split)
                chosen = habit_choice(split, option, n_options, workload_family[i, k, w], switching_bonus,
                                      workload_draws[i - first_draw_row, k, w])
                workload_family[i, k, w] = chosen
                if chosen >= 0:
                    out[0, chosen] += share
                    for t in range(1, n_tiers):
                        out[t, chosen] += share * tier_share[t - 1, chosen]
                    by_use[k, chosen] += share
        return
    for k in range(use_slack.shape[1]):
        mix = use_mix[i, k]
        use_utilities(i, agents, terms, base, use_slack[i, k], option, n_options, per_use, tier_share, fit, False)
        logit_split(per_use, option, n_options, min_share, split)
        for j in range(n_options):
            f = option[j]
            out[0, f] += split[f] * mix
            for t in range(1, n_tiers):
                out[t, f] += split[f] * mix * tier_share[t - 1, f]
            by_use[k, f] = split[f] * mix


@_inline
def habit_choice(probability, option, n_options, current, switching_bonus, draw):
    """Family a workload runs on after re-evaluation (docs/ODD.md 7.4): the logit `probability` over the options
    (zero elsewhere), with the family it runs on (`current`, -1 for none) weighted by `switching_bonus` = exp(cost).
    It stays with chance b p_g / (1 + (b - 1) p_g), else moves to another option with chance proportional to p_f,
    read off the running sum of the others' probabilities at the draw beyond the stay; -1 if nothing has weight."""
    p_current = probability[current] if current >= 0 else np.float32(0.0)
    stay = switching_bonus * p_current / (np.float32(1.0) + (switching_bonus - np.float32(1.0)) * p_current)
    if draw < stay:
        return current
    leave = (draw - stay) / max(np.float32(1.0) - stay, np.float32(1e-12))
    leave = min(max(leave, np.float32(0.0)), np.float32(1.0)) * (np.float32(1.0) - p_current)
    running = np.float32(0.0)
    last = -1
    for j in range(n_options):
        f = option[j]
        if f == current or probability[f] == 0:
            continue
        running += probability[f]
        last = f
        if running > leave:
            return f
    if last >= 0:  # rounding past the last option
        return last
    return current if p_current > 0 else -1  # a single option stays; nothing with weight: none


@_compile
def habit_choices(probabilities, current, switching_bonus, draws, option, out):
    """`habit_choice` for each row and workload (tests): probabilities rows x families, current, draws and out rows
    x workloads, `option` the family indices."""
    n_families = probabilities.shape[1]
    for r in range(probabilities.shape[0]):
        for w in range(current.shape[1]):
            out[r, w] = habit_choice(probabilities[r], option, n_families, current[r, w], switching_bonus,
                                     draws[r, w])


@_compile
def utilities(rows, agents, terms, peers, out, peer_share, every):
    """`utility` of every family for the given rows (the model's inspection API and tests); `peer_share` is a
    float32 work area, `every` the family indices."""
    n_families = out.shape[1]
    for k in range(rows.size):
        peer_shares(rows[k], peers, every, n_families, peer_share)
        utility(rows[k], agents, terms, peer_share, every, n_families, out[k])


@_compile
def work_splits(rows, options, agents, terms, peers, out, by_use, area, option):
    """`work_split` for the given rows and options (the model's inspection API and tests): out is rows x tiers x
    families, by_use rows x uses x families; `area` and `option` as in work_split."""
    for k in range(rows.size):
        work_split(rows[k], options[k], agents, terms, peers, area, option, out[k], by_use[k])


@_inline
def _add_use(usage, s, weight, work, tier_work, i):
    """Agent i's use of each family, then of each family's cheaper tiers (tier by tier), added to stratum s. A
    family it does not use is skipped: its tiers' parts are parts of its share, and adding +0.0 to a sum of
    non-negative terms changes no bit."""
    n_cheaper, n_families = tier_work.shape[1], work.shape[1]
    for f in range(n_families):
        if work[i, f] == 0:
            continue
        usage[s, f] += weight * work[i, f]
        for t in range(n_cheaper):
            usage[s, (t + 1) * n_families + f] += weight * tier_work[i, t, f]


@_inline
def _add_use_by_use(by_use, c, weight, i, work, agents, use_work, choice):
    """Agent i's use of each family in each use (coding, chat/roleplay, agents) added to row c of `by_use`
    (cells x uses x families), read from the state that keeps it: the family each workload runs on (a workload
    carries its use's mix over the use's workloads); without workloads the per-use split stored at the agent's
    last choice (`use_work`); without choice the even split, the same in every use."""
    use_mix, workloads_per_use, workload_family = agents[7], agents[8], agents[10]
    n_uses, n_families = by_use.shape[1], by_use.shape[2]
    n_workloads = workloads_per_use[i]
    for k in range(n_uses):
        if not choice:
            mix = weight * use_mix[i, k]
            for f in range(n_families):
                by_use[c, k, f] += mix * work[i, f]
        elif n_workloads > 0:
            share = weight * (use_mix[i, k] / np.float32(n_workloads))
            for w in range(n_workloads):
                f = workload_family[i, k, w]
                if f >= 0:
                    by_use[c, k, f] += share
        else:
            for f in range(n_families):
                by_use[c, k, f] += weight * use_work[i, k, f]


@_inline
def _set_options(options, aware, allowed_by_cell, allowed, work, i):
    """Agent i's options this month (families it knows that its cell and routing allow, `allowed` the row of
    allowed_by_cell), and whether it has any and whether it uses one no longer allowed."""
    any_option = False
    lost_option = False
    for f in range(work.shape[1]):
        options[f] = aware[i, f] and allowed_by_cell[allowed, f]
        any_option |= options[f]
        lost_option |= work[i, f] > 0 and not allowed_by_cell[allowed, f]
    return any_option, lost_option


@_inline
def _even_split(new, options):
    """With choice off, an even split over the known options, all on the flagship tier."""
    count = 0
    for f in range(options.size):
        count += options[f]
    for f in range(options.size):
        new[0, f] = np.float32(1.0 / count) if options[f] else np.float32(0.0)
        for t in range(1, new.shape[0]):
            new[t, f] = 0.0


@_inline
def _take_split(i, new, work, tier_work, changes, slot, changed_agents, n_changed, adopted_month, month):
    """Agent i adopts its new split (`new`: tiers x families): its cheaper tiers' parts go to `tier_work`, and a
    changed split is recorded in the compact `changes` tables (uses f, share on f) for the neighbours' sums, and in
    `adopted_month` (this `month` for each family it starts using, -1 for each it stops: retention, OR14).
    Returns whether it is active, the number of changed agents so far and the number of families it started."""
    n_families = work.shape[1]
    changed = False
    now_active = False
    started = 0
    for f in range(n_families):
        changed |= new[0, f] != work[i, f]
        now_active |= new[0, f] != 0
        for t in range(1, new.shape[0]):
            tier_work[i, t - 1, f] = new[t, f]
    if changed:
        for f in range(n_families):
            was, now = work[i, f] > 0, new[0, f] > 0
            if now and not was:
                adopted_month[i, f] = month
                started += 1
            elif was and not now:
                adopted_month[i, f] = -1
            changes[0][n_changed, f] = np.int8(now) - np.int8(was)
            changes[1][n_changed, f] = new[0, f] - work[i, f]
            work[i, f] = new[0, f]
        slot[i] = n_changed
        changed_agents[n_changed] = i
        n_changed += 1
    return now_active, n_changed, started


@_compile
def choose(work, tier_work, use_work, aware, active, uses_marketplace, changes, slot, usage, market_by_use, cell,
           stratum, weight, is_firm, marketplace_propensity, graph_indptr, graph_indices, agents, terms, peers,
           switch_draws, first_month, choice, routing_by_cell, allowed_by_cell, switch_rate_firm,
           switch_rate_developer, new, new_by_use, options, area, option, changed_agents, total, adopted_month, month,
           started, start, stop, n_changed):
    """The month's choices in one pass over the agents: who routes through a marketplace, who re-evaluates
    (switch draw, first month, a first option newly possible, a family no longer allowed), their new split,
    and each agent's use added to its stratum's `usage` (float64; stratum = 2 x `stratum` + routes through a
    marketplace) and, for marketplace agents, its use per use and family to its cell's `market_by_use` (cells x
    uses x families, float64; `_add_use_by_use`). Then the neighbours' sums take the changes
    (`pass_on_changes`), so every agent chooses on last month's peers. `tier_work` (agents x cheaper tiers x
    families) takes the part of each share on each of the family's cheaper tiers; `use_work` (agents x uses x
    families, only without workloads) the part in each use. `changes` (int8 and float32 tables, agents x
    families), `slot` (agents, all -1), `new` (tiers x families), `new_by_use` (uses x families), `options`,
    `area`, `option` (as in work_split), `changed_agents` (agents) and `total` (2 families) are work areas. Each agent's families started
    this month are counted in `started` (agents) and dated in `adopted_month` (`_take_split`).

    One call takes the agents start to stop (their workload draws, `agents[11]`, start at row `agents[12]`), so
    the model draws them a block at a time; `n_changed` carries the changes count from the previous block, and
    is returned. The sums are cleared at the first block and the neighbours' sums updated after the last."""
    complete = peers[2]
    n, n_families = work.shape
    n_cells = routing_by_cell.size
    workloads_per_use = agents[8]
    if start == 0:
        usage[:] = 0.0
        market_by_use[:] = 0.0
    for i in range(start, stop):
        started[i] = 0
        c = cell[i]
        market = marketplace_propensity[i] < min(1.0, routing_by_cell[c])
        uses_marketplace[i] = market
        any_option, lost_option = _set_options(options, aware, allowed_by_cell, c + n_cells * market, work, i)
        rate = switch_rate_firm if is_firm[i] else switch_rate_developer
        due = (not choice) or first_month or switch_draws[i] < rate or lost_option or (any_option and not active[i])
        if due:
            if choice:
                work_split(i, options, agents, terms, peers, area, option, new, new_by_use)
                if workloads_per_use[i] == 0:  # otherwise the workloads' families keep the split by use
                    for k in range(new_by_use.shape[0]):
                        for f in range(n_families):
                            use_work[i, k, f] = new_by_use[k, f]
            else:  # everyone splits evenly over what they know
                _even_split(new, options)
            active[i], n_changed, started[i] = _take_split(i, new, work, tier_work, changes, slot, changed_agents,
                                                           n_changed, adopted_month, month)
        if active[i]:
            _add_use(usage, 2 * stratum[i] + market, weight[i], work, tier_work, i)
            if market:
                _add_use_by_use(market_by_use, c, weight[i], i, work, agents, use_work, choice)
    if stop < n:
        return n_changed
    if not complete and n_changed:
        pass_on_changes(changes, slot, peers[0], graph_indptr, graph_indices, total)
    for k in range(n_changed):
        slot[changed_agents[k]] = -1
    return n_changed


@_inline
def pass_on_changes(changes, slot, neighbour_sums, graph_indptr, graph_indices, total):
    """Each agent's sums over its neighbours of [uses f, share of work on f] take its changed neighbours'
    changes (row `slot[j]` of the `changes` tables, uses f then share on f, for neighbour j, if `slot[j]` >= 0),
    summed in neighbour order before they are added, as the sparse product graph @ changes does. Reading each
    agent's own neighbours (a gather) keeps the writes in order, and the changes sit in compact tables: that is
    what makes it cheap at scale."""
    uses, shares = changes
    n_families = uses.shape[1]
    width = 2 * n_families  # `total` is a work area of that width
    for t in range(neighbour_sums.shape[0]):
        any_changed = False
        for k in range(graph_indptr[t], graph_indptr[t + 1]):
            s = slot[graph_indices[k]]
            if s < 0:
                continue
            if not any_changed:
                any_changed = True
                total[:] = 0.0
            for f in range(n_families):
                total[f] += np.float32(uses[s, f])
                total[n_families + f] += shares[s, f]
        if any_changed:
            for f in range(width):
                neighbour_sums[t, f] += total[f]


@_compile
def usage_by_stratum(work, tier_work, use_work, active, uses_marketplace, cell, stratum, weight, agents, choice,
                     usage, market_by_use):
    """The sums `choose` accumulates in its pass, for a model whose state was changed from outside."""
    usage[:] = 0.0
    market_by_use[:] = 0.0
    for i in range(work.shape[0]):
        _add_use(usage, 2 * stratum[i] + uses_marketplace[i], weight[i], work, tier_work, i)
        if active[i] and uses_marketplace[i]:
            _add_use_by_use(market_by_use, cell[i], weight[i], i, work, agents, use_work, choice)


@_compile
def pairs_adopted_in(adopted_month, work, months, out):
    """For each of `months` (row of `out`) and each agent, how many families it uses that it began using in that
    month (retention, OR14: the (agent, family) pairs of a cohort still in use)."""
    n, n_families = work.shape
    for i in range(n):
        for k in range(months.size):
            out[k, i] = 0
        for f in range(n_families):
            if work[i, f] > 0:
                for k in range(months.size):
                    out[k, i] += adopted_month[i, f] == months[k]
