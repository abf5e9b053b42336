"""What holds US firms off open-weight families in 2023-2024 (issue 18, ENT0-ENT2; docs/ODD.md 7.4).

    .venv/bin/python tools/enterprise_diagnosis.py terms [--seeds 4] [--agents 2000] [--rows 1,2,3]
    .venv/bin/python tools/enterprise_diagnosis.py switches [--seeds 10] [--agents 2000] [--rows 1,2,3] [--only A;B]
    .venv/bin/python tools/enterprise_diagnosis.py shares-2030 [--seeds 10] [--agents 2000] [--rows 1,2,3]
    .venv/bin/python tools/enterprise_diagnosis.py posterior [--first-rows 40] [--seeds 2] [--agents 2000]

terms: at calibration/best.toml and the given rows of calibration/posterior.csv, the US firms' (North America;
SME, enterprise, regulated enterprise) utility of the open (Llama, Mistral, DeepSeek, Qwen) and closed (GPT, Claude, Gemini) families in 2023-09, 2024-06 and 2025-06, term by term as
sim/core/kernels.py adds them, demand-weighted over the firms and over each firm's uses (use mix) and workloads
(the capability shortfall depends on the workload's need); with how many of those firms know each family and
what share of their work it holds.
switches: the same sets on paired seeds, 2023-01..2026-01, one term or rule switched off at a time; median over
seeds of ENT0, ENT1, ENT2 (the workload-weighted statistic the targets use), of the same years' spend-weighted
open share (open families' share of the firms' spend, tokens x tier price), and of OR4 and OR5.
shares-2030: the same sets' 2030-12 Chinese-origin and open-weight marketplace shares over seeds (draws on).
posterior: ENT0-ENT2, OR4 and OR5 over the first rows of calibration/posterior.csv (a cheap posterior predictive).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.core.agents import LICENCE_PENALTY  # noqa: E402
from sim.core.catalogue import ORIGINS  # noqa: E402
from sim.core.model import DiffusionModel  # noqa: E402
from sim.core.observe import slug  # noqa: E402
from sim.core.population import REGIONS, SEGMENT_NAMES, USES  # noqa: E402
from sim.inputs.posterior import load_posterior  # noqa: E402
from sim.inputs.scenario import load_scenario  # noqa: E402
from sim.inputs.targets import load_targets  # noqa: E402

FIRMS = ("sme", "enterprise", "regulated_enterprise")
SHOWN_FAMILIES = ("Llama", "Mistral", "DeepSeek", "Qwen", "GPT", "Claude", "Gemini")
MONTHS = ("2023-09", "2024-06", "2025-06")
FIGURES = ("ENT0", "ENT1", "ENT2", "OR4", "OR5")
YEARS = {"ENT0": "2023", "ENT1": "2024", "ENT2": "2025"}

# One term or rule off at a time. "self-hosting discount off" prices open weights at the API price for everyone
# (h_i = 1); "trust off" drops every origin penalty; "licence off" the licence penalty; "awareness full" lets
# every agent know every released family (what awareness costs open families); "North American Chinese penalty
# >= 0" raises a negative North American offset so that trust_cn_shared + trust_cn_north_america is at least 0 (no
# preference for Chinese models there, which firm_origin_trust doubles for firms); "Chinese families shunned"
# adds 10 utility units to that penalty (as if they were not sold there); "US firms: chat/roleplay only" gives
# the US firms the chat/roleplay use alone (slack 10-25 ECI points: an upper bound on what the capability need of
# coding and agent work costs open families); "coding share x0.4" moves 60% of every agent's coding share to
# chat/roleplay, which brings the marketplace's programming share near OR9a's early-2025 11% (0.29 as fitted).
SWITCHES = {
    "as fitted": {},
    "price_sensitivity 0.05 (its minimum)": {"price_sensitivity": 0.05},
    "self-hosting discount off": "no_selfhost",
    "capability_weight 0.1 (its minimum)": {"capability_weight": 0.1},
    "quality_weight 0": {"quality_weight": 0.0},
    "licence_weight 0": {"licence_weight": 0.0},
    "openness_weight 4 (its maximum)": {"openness_weight": 4.0},
    "ecosystem_weight 0": {"ecosystem_weight": 0.0},
    "peer_weight 0": {"peer_weight": 0.0},
    "switching_cost 0": {"switching_cost": 0.0},
    "awareness full": "aware_all",
    "North American Chinese penalty >= 0": "cn_penalty_clipped",
    "Chinese families shunned in North America": "cn_shunned",
    "US firms: chat/roleplay only": "firms_chat",
    "coding share x0.4 (OR9a level)": "coding_or9a",
}


def parameter_sets(rows: list[int]) -> dict[str, tuple[dict, tuple]]:
    """best.toml and posterior rows, as (model keyword arguments, shocks)."""
    kwargs = load_scenario(ROOT / "calibration" / "best.toml").model_kwargs()
    shocks = tuple(kwargs.pop("shocks", ()))
    posterior = load_posterior().drop(columns="weight")
    sets = {"best.toml": (kwargs, shocks)}
    for k in rows:
        sets[f"posterior row {k}"] = ({**kwargs, **posterior.iloc[k].to_dict()}, shocks)
    return sets


def us_firms(model) -> np.ndarray:
    pop = model.population
    return np.flatnonzero((pop.region == REGIONS.index("north_america"))
                          & np.isin(pop.segment, [SEGMENT_NAMES.index(s) for s in FIRMS]))


BASE_TERMS = ("price (incl. self-hosting)", "licence", "openness need", "origin trust", "ecosystem", "peers")


def firm_terms(model, family: str) -> dict[str, np.ndarray]:
    """Each US firm's utility of `family`, term by term as sim/core/kernels.py adds them (BASE_TERMS are
    kernels.utility's; the capability shortfall and quality are use_utilities', the shortfall averaged over each
    use's workloads and weighted by the firm's use mix), at the model's current month."""
    p, pop = model.params, model.population
    rows = us_firms(model)
    log_price, is_open, _, trust, family_term = model._choice_terms()[:5]
    f, r = model.family_names.index(family), REGIONS.index("north_america")
    gap = np.maximum(0.0, model.frontier - model.capability[f])
    weighs_origin = model._agent_arrays()[5][rows]
    peers = model._neighbour_sums[rows, len(model.families) + f] * model.inverse_degree[rows]
    slack = model.workload_slack[rows]  # firms x uses x slots
    n_work = model.workloads_per_use[rows]
    slot_used = np.arange(slack.shape[2])[None, :] < n_work[:, None]  # firms x slots
    per_use = (np.maximum(0.0, gap - slack) * slot_used[:, None, :]).sum(axis=2) / n_work[:, None]
    trust_weight = np.where(weighs_origin & (trust[r, f] > 0), p["regulated_trust_multiplier"], 1.0)  # ODD 7.4
    return {
        "price (incl. self-hosting)": -p["price_sensitivity"] * pop.price_weight[rows]
        * (log_price[r, f] + model.log_selfhost_discount[rows] * is_open[f]),
        "capability shortfall": -p["capability_weight"] / 5 * (per_use * pop.use_mix[rows]).sum(axis=1),
        "quality": np.full(len(rows), -p["quality_weight"] / 5 * gap),
        "licence": -p["licence_weight"] * pop.licence_friction[rows] * LICENCE_PENALTY[model.licence[f]],
        "openness need": p["openness_weight"] * pop.open_need[rows] * is_open[f],
        "origin trust": -trust[r, f] * trust_weight,
        "ecosystem": np.full(len(rows), family_term[f]),
        "peers": p["peer_weight"] * peers,
    }


def term_table(model) -> pd.DataFrame:
    """The US firms' mean utility of each shown family, term by term (`firm_terms`), demand-weighted over firms;
    with the family's gap and price, how many firms know it and what share of their work it holds."""
    pop = model.population
    rows = us_firms(model)
    w = pop.weight[rows] / pop.weight[rows].sum()
    slot_used = np.arange(model.workload_slack.shape[2])[None, :] < model.workloads_per_use[rows][:, None]
    r = REGIONS.index("north_america")
    table = {}
    for name in SHOWN_FAMILIES:
        f = model.family_names.index(name)
        if not model.released[f]:
            continue
        col = firm_terms(model, name)
        col["sum"] = sum(col.values())
        col = {k: float(w @ v) for k, v in col.items()}
        on_it = ((model.workload_family[rows] == f) * slot_used[:, None, :]).sum(axis=2) / slot_used.sum(axis=1)[:, None]
        col["(ECI behind frontier)"] = float(max(0.0, model.frontier - model.capability[f]))
        col["(price USD/M)"] = float(model.price_by_region[r, f])
        col["(firms aware)"] = float(w @ model.aware[rows, f])
        col["(share of work)"] = float(w @ model.work[rows, f])
        col["(workloads on it)"] = float(w @ (on_it * pop.use_mix[rows]).sum(axis=1))
        table[name] = col
    return pd.DataFrame(table)


def run_to(kwargs: dict, shocks: tuple, seed: int, month: str):
    model = DiffusionModel(rng=seed, shocks=shocks, **{**kwargs, "end": month})
    while model.running:
        model.step()
    return model


def terms(sets: dict, seeds: int, agents: int) -> None:
    for label, (kwargs, shocks) in sets.items():
        for month in MONTHS:
            tables = [term_table(run_to({**kwargs, "n_agents": agents}, shocks, seed, month)) for seed in range(seeds)]
            mean = sum(tables) / len(tables)
            print(f"--- {label}, {month} (mean over seeds 0-{seeds - 1})")
            print(mean.round(3).to_string())


def spend_open_share(frame: pd.DataFrame, model_families, year: str) -> float:
    """Open families' share of the US firms' spend (ent_spend_share_*), the year's mean."""
    cols = [f"ent_spend_share_{slug(f.name)}" for f in model_families if f.open_weights]
    return float(frame.loc[f"{year}-01":f"{year}-12", cols].sum(axis=1).mean())


def switched_run(kwargs: dict, shocks: tuple, seed: int, switch) -> tuple[pd.DataFrame, list]:
    setting = switch if isinstance(switch, dict) else {}
    if switch == "cn_penalty_clipped":
        setting = {"trust_cn_north_america": max(kwargs["trust_cn_north_america"], -kwargs["trust_cn_shared"])}
    model = DiffusionModel(rng=seed, shocks=shocks, **{"end": "2026-01", **kwargs, **setting})
    if switch == "no_selfhost":
        model.log_selfhost_discount[:] = 0.0
    if switch == "cn_shunned":
        fitted_trust = model.trust_matrix

        def shunned():
            trust = fitted_trust()
            trust[REGIONS.index("north_america"), ORIGINS.index("CN")] += 10.0
            return trust
        model.trust_matrix = shunned
    mix = model.population.use_mix
    if switch == "firms_chat":
        mix[us_firms(model)] = np.eye(len(USES))[USES.index("chat_roleplay")]
    if switch == "coding_or9a":
        moved = 0.6 * mix[:, USES.index("coding")]
        mix[:, USES.index("coding")] -= moved
        mix[:, USES.index("chat_roleplay")] += moved
    while model.running:
        if switch == "aware_all":
            model.aware[:, model.released] = True
        model.step()
    return model.datacollector.get_model_vars_dataframe().set_index("date"), model.families


def switches(sets: dict, seeds: int, agents: int, only: list[str]) -> None:
    targets = {t.id: t for t in load_targets(missing_ok=False) if t.id in FIGURES}
    for label, (kwargs, shocks) in sets.items():
        rows = {}
        for name, switch in SWITCHES.items():
            if only and name not in only:
                continue
            runs = [switched_run({**kwargs, "n_agents": agents}, shocks, seed, switch) for seed in range(seeds)]
            row = {}
            for fid in FIGURES:
                values = [targets[fid].statistic_of(frame) for frame, _ in runs]
                row[fid] = f"{np.nanmedian(values):.3f}"
            for fid, year in YEARS.items():
                row[f"{fid} spend"] = f"{np.nanmedian([spend_open_share(fr, fams, year) for fr, fams in runs]):.3f}"
            rows[name] = row
        print(f"--- {label} (median over paired seeds 0-{seeds - 1}, {agents} agents)")
        print(pd.DataFrame(rows).T.to_string())


def shares_2030(sets: dict, seeds: int, agents: int) -> None:
    """The 2030-12 Chinese-origin and open-weight marketplace shares (projection-assumption draws on)."""
    for label, (kwargs, shocks) in sets.items():
        frames = [switched_run({**kwargs, "n_agents": agents, "end": "2030-12"}, shocks, seed, {})[0]
                  for seed in range(seeds)]
        for metric in ("or_share_cn", "or_share_open"):
            lo, mid, hi = np.nanquantile([f[metric].iloc[-1] for f in frames], [0.05, 0.5, 0.95])
            print(f"{label}, {metric} 2030-12 over seeds 0-{seeds - 1}: median {mid:.3f}, 90% {lo:.3f}-{hi:.3f}")


def posterior_check(first_rows: int, seeds: int, agents: int) -> None:
    """ENT0-ENT2, OR4 and OR5 over the first `first_rows` rows of calibration/posterior.csv, `seeds` seeds each
    (a cheap posterior predictive): medians and 5-95% over all runs, and the share of runs with ENT2 < ENT1."""
    targets = {t.id: t for t in load_targets(missing_ok=False) if t.id in FIGURES}
    sets = parameter_sets(list(range(1, first_rows)))
    values = {fid: [] for fid in FIGURES}
    for kwargs, shocks in sets.values():
        for seed in range(seeds):
            frame = switched_run({**kwargs, "n_agents": agents}, shocks, seed, {})[0]
            for fid in FIGURES:
                values[fid].append(targets[fid].statistic_of(frame))
    for fid, v in values.items():
        lo, mid, hi = np.nanquantile(v, [0.05, 0.5, 0.95])
        hit = np.mean([targets[fid].hit(x) for x in v])
        print(f"{fid}: median {mid:.3f}, 90% {lo:.3f}-{hi:.3f}, {hit:.0%} of runs within tolerance")
    falling = np.mean(np.array(values["ENT2"]) < np.array(values["ENT1"]))
    print(f"ENT2 < ENT1 in {falling:.0%} of {len(values['ENT1'])} runs ({len(sets)} sets x {seeds} seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("terms", "switches", "shares-2030", "posterior"))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--only", default="", help="switches to run (names as in SWITCHES, ';'-separated)")
    parser.add_argument("--first-rows", type=int, default=40, help="posterior: rows 0..N-1 (row 0 is best.toml)")
    parser.add_argument("--rows", default="1,2,3", help="rows of calibration/posterior.csv, comma-separated")
    a = parser.parse_args()
    sets = parameter_sets([int(k) for k in a.rows.split(",") if k])
    if a.what == "terms":
        terms(sets, a.seeds or 4, a.agents)
    elif a.what == "posterior":
        posterior_check(a.first_rows, a.seeds or 2, a.agents)
    elif a.what == "shares-2030":
        shares_2030(sets, a.seeds or 10, a.agents)
    else:
        switches(sets, a.seeds or 10, a.agents, [k for k in a.only.split(";") if k])


if __name__ == "__main__":
    main()
