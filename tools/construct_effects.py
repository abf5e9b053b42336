"""Measure what the issue-18 constructs move (the figures in docs/ODD.md 7.7 and the helper's report).

    .venv/bin/python tools/construct_effects.py switches [--seeds 20] [--agents 1000]
    .venv/bin/python tools/construct_effects.py assumptions [--seeds 40] [--agents 1000]
    .venv/bin/python tools/construct_effects.py price-response FAMILY [--seeds 20] [--agents 2000]
    .venv/bin/python tools/construct_effects.py tiers [--seeds 4] [--agents 2000]
    .venv/bin/python tools/construct_effects.py firm-trust [--seeds 20] [--agents 2000]
    .venv/bin/python tools/construct_effects.py task-fit [--seeds 10] [--agents 2000] [--spread-seeds 20]

switches: paired seeds at the hand-set defaults, each construct switched off in turn (the former ecosystem, the
former open/closed price declines 0.4/0.3, central values instead of draws), 2023-01..2030-12.
assumptions: at calibration/best.toml, the 2030-12 Chinese and open-weight marketplace shares with and without the
projection-assumption draws, and each drawn assumption's rank correlation with them.
price-response: OR12 / NBER as an experiment: one family's price cut 10% from 2025-06 on paired seeds at
calibration/best.toml; its marketplace share 1 and 6 months later, and the implied elasticity.
tiers: price tiers (docs/ODD.md 7.9) off, two tiers (flagship, efficient) and three (with the standard tier) at
calibration/best.toml on paired seeds, 2023-01..2026-01, observation scales solved per set: the figures tiers can
move, median over seeds and share of seeds hitting, and the CPU time per run.
firm-trust: origin trust weighed by every firm (`firm_origin_trust`, default) against regulated firms only (the
former model; docs/ODD.md 7.4), same design as tiers.
task-fit: task-specific capability (`task_fit_sd`, docs/ODD.md 7.4) off and at the catalogue's estimate, same design
as tiers at calibration/best.toml and at the two heaviest rows of calibration/posterior.csv (the first two when
the weights are equal); then the 2030-12 spread
of the Chinese and open-weight marketplace shares at best.toml with the assumption draws on, off against on.
"""


from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.core.model import DiffusionModel  # noqa: E402
from sim.core.observe import slug  # noqa: E402
from sim.core.parameters import PROJECTION_ASSUMPTIONS  # noqa: E402
from sim.running.runner import run_member  # noqa: E402
from sim.inputs.scenario import load_scenario  # noqa: E402
from sim.core.shocks import parse_shock  # noqa: E402
from sim.inputs.posterior import load_posterior  # noqa: E402
from sim.inputs.targets import load_targets, with_solved_scales  # noqa: E402

SHARES = ("or_share_cn", "or_share_open")
SHOWN = ("OR1", "OR2", "OR3", "OR5", "OR8b", "HF1a", "HF1b", "HF2", "HF8", "ENT1", "ENT2")


def _best() -> tuple[dict, tuple]:
    kwargs = load_scenario(ROOT / "calibration" / "best.toml").model_kwargs()
    return kwargs, tuple(kwargs.pop("shocks", ()))


def _interval(values) -> str:
    lo, mid, hi = np.nanquantile(values, [0.05, 0.5, 0.95])
    return f"{mid:.2f} [{lo:.2f}-{hi:.2f}] width {hi - lo:.2f}"


def switches(seeds: int, agents: int) -> None:
    former = {"ecosystem_form": "open_log", "price_decline_open": 0.4, "price_decline_closed": 0.3}
    configs = {
        "all former (imputation only is new)": {**former, "draw_assumptions": False},
        "+ symmetric price declines": {"ecosystem_form": "open_log", "draw_assumptions": False},
        "+ saturating two-sided ecosystem": {"draw_assumptions": False},
        "+ draws (the default)": {},
    }
    targets = [t for t in load_targets() if t.id in SHOWN]
    rows = {}
    for label, extra in configs.items():
        frames = [run_member({"n_agents": agents, **extra}, seed) for seed in range(seeds)]
        row = {}
        for t in targets:
            values = [t.statistic_of(f) for f in frames]
            row[t.id] = f"{t.format(np.nanmedian(values))} ({np.mean([t.hit(v) for v in values]):.0%} hit)"
        for metric in SHARES:
            row[f"{metric} 2030-12"] = _interval([f.loc["2030-12", metric] for f in frames])
        rows[label] = row
    print(pd.DataFrame(rows).to_string())


def assumptions(seeds: int, agents: int) -> None:
    kwargs, shocks = _best()
    runs = {}
    for label, extra in (("with draws", {}), ("central values", {"draw_assumptions": False})):
        runs[label] = []
        for seed in range(seeds):
            model = DiffusionModel(rng=seed, shocks=shocks, **{**kwargs, **extra, "n_agents": agents})
            while model.running:
                model.step()
            runs[label].append((model.base_params, model.observations))
    for metric in SHARES:
        values = {label: np.array([obs[metric] for _, obs in r]) for label, r in runs.items()}
        for label, v in values.items():
            print(f"{metric} 2030-12, {label}: {_interval(v)}, sd {np.nanstd(v):.3f}")
        share = 1 - np.nanvar(values["central values"]) / np.nanvar(values["with draws"])
        print(f"  share of the variance the assumption draws add: {share:.0%}")
        drawn = runs["with draws"]
        print("  rank correlation with each drawn assumption:",
              {a: round(float(spearmanr([p[a] for p, _ in drawn], values["with draws"])[0]), 2)
               for a in PROJECTION_ASSUMPTIONS})


def price_response(family: str, seeds: int, agents: int) -> None:
    kwargs, shocks = _best()
    cut = parse_shock({"date": "2025-06", "families": {"names": [family]}, "price_factor": 0.9})
    metric = f"or_share_{slug(family)}"
    changes: dict[str, list[float]] = {"2025-06": [], "2025-11": []}
    for seed in range(seeds):
        series = []
        for applied in (shocks, shocks + (cut,)):
            model = DiffusionModel(rng=seed, shocks=applied, **{**kwargs, "n_agents": agents, "end": "2025-12"})
            while model.running:
                model.step()
            series.append(model.datacollector.get_model_vars_dataframe().set_index("date")[metric])
        for month, values in changes.items():
            base = series[0][month]
            values.append(series[1][month] / base - 1 if base > 0 else np.nan)
    for month, values in changes.items():
        v = np.array(values)
        print(f"{family}, {month}: share change median {np.nanmedian(v):+.1%} (90%: {np.nanquantile(v, 0.05):+.1%}"
              f" to {np.nanquantile(v, 0.95):+.1%}; {np.isnan(v).sum()} seeds without use); elasticity "
              f"{np.nanmedian(v) / -0.1:+.2f} (OR12: about -0.06 in the short run; NBER: -1.1 across providers)")


TIER_FIGURES = ("ENT3a", "ENT3b", "ENT3c", "OR9a", "OR9b", "OR13", "NY1", "NY2", "OR1", "OR2", "OR3", "OR4", "OR5",
                "OR8b")
TIER_MODELS = {"tiers off": {"price_tiers": False}, "two tiers": {"standard_tier": False}, "three tiers": {}}
TIER_METRICS = ("or_standard_share_closed", "or_efficient_share_closed", "or_price_per_token",
                "or_price_per_token_open", "ent_spend_share_claude", "ent_spend_share_gpt")
TRUST_FIGURES = ("OR1", "OR2", "OR3", "OR4", "OR5", "OR8b", "OR15d", "HF1a", "HF2", "ENT0", "ENT1", "ENT2", "ENT3c",
                 "ENT4")
TRUST_MODELS = {"regulated firms only (former)": {"firm_origin_trust": False}, "every firm (default)": {}}
TRUST_METRICS = ("share_cn_north_america", "ent_spend_share_deepseek", "ent_spend_share_qwen", "ent_spend_share_llama")


TASK_FIT_FIGURES = ("OR2", "OR3", "OR4", "OR5", "OR8b", "OR14a", "ENT1", "ENT2", "ENT4")
TASK_FIT_MODELS = {"task fit off": {"task_fit_sd": 0.0}, "task fit 3.1 ECI": {"task_fit_sd": 3.1}}
TASK_FIT_METRICS = ("or_top_open_family_share", "ent_multihoming_3plus", "ent_multihoming_5plus",
                    "ent_top_family_share")


def task_fit(seeds: int, agents: int, spread_seeds: int) -> None:
    """The task-fit measurement of the module's docstring, printed."""
    kwargs, shocks = _best()
    posterior = load_posterior()
    heaviest = posterior.sort_values("weight", ascending=False, kind="stable").drop(columns="weight").head(2)
    for label, fitted in [("best.toml", {})] + [(f"posterior row {k}", row.to_dict())
                                                  for k, row in heaviest.iterrows()]:
        print(f"--- {label}")
        compare(TASK_FIT_MODELS, TASK_FIT_FIGURES, TASK_FIT_METRICS, seeds, agents,
                base=({**kwargs, **fitted}, shocks))
    for label, setting in TASK_FIT_MODELS.items():
        values = {metric: [] for metric in SHARES}
        for seed in range(spread_seeds):
            model = DiffusionModel(rng=seed, shocks=shocks, **{**kwargs, "n_agents": agents, **setting})
            while model.running:
                model.step()
            for metric in SHARES:
                values[metric].append(model.observations[metric])
        for metric, v in values.items():
            print(f"{label}, {metric} 2030-12 ({spread_seeds} seeds, draws on): {_interval(v)}")


def compare(models: dict, figures: tuple, metrics: tuple, seeds: int, agents: int, base: tuple | None = None) -> None:
    """Each setting of `models` at `base` (keyword arguments, shocks; default calibration/best.toml) on paired
    seeds, 2023-01..2026-01, observation scales solved per setting: median over seeds (share of seeds hitting) of
    each figure, 2025 medians of `metrics`, the largest monthly move of the median open-weight marketplace share,
    and the CPU time per run."""
    kwargs, shocks = base or _best()
    targets = load_targets(missing_ok=False)
    fitted, shown = [t for t in targets if t.fit], [t for t in targets if t.id in figures]
    rows = {}
    for label, setting in models.items():
        params = {**kwargs, "n_agents": agents, "end": "2026-01", **setting}
        frames, cpu = [], []
        for seed in range(seeds):
            start = time.process_time()
            model = DiffusionModel(rng=seed, shocks=shocks, **params)
            while model.running:
                model.step()
            cpu.append(time.process_time() - start)
            frames.append(model.datacollector.get_model_vars_dataframe().set_index("date"))
        frames = with_solved_scales(fitted, frames, params)
        row = {}
        for t in shown:
            values = [t.statistic_of(f) for f in frames]
            row[t.id] = f"{t.format(np.nanmedian(values))} ({np.mean([t.hit(v) for v in values]):.0%} hit)"
        for metric in metrics:
            row[f"{metric} 2025"] = f"{np.nanmedian([f.loc['2025-01':'2025-11', metric].mean() for f in frames]):.3g}"
        median_open = pd.concat([f["or_share_open"] for f in frames], axis=1).median(axis=1)
        row["largest monthly move of the median open share"] = f"{median_open.diff().abs().max():.3f}"
        row["CPU s per run (median; the first includes compilation)"] = f"{np.median(cpu[1:] or cpu):.2f}"
        rows[label] = row
    print(pd.DataFrame(rows).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("switches", "assumptions", "price-response", "tiers", "firm-trust",
                                                   "task-fit"))
    parser.add_argument("family", nargs="?", default="DeepSeek")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--agents", type=int, default=None)
    parser.add_argument("--spread-seeds", type=int, default=20)
    a = parser.parse_args()
    if a.what == "switches":
        switches(a.seeds or 20, a.agents or 1000)
    elif a.what == "assumptions":
        assumptions(a.seeds or 40, a.agents or 1000)
    elif a.what == "tiers":
        compare(TIER_MODELS, TIER_FIGURES, TIER_METRICS, a.seeds or 4, a.agents or 2000)
    elif a.what == "task-fit":
        task_fit(a.seeds or 10, a.agents or 2000, a.spread_seeds)
    elif a.what == "firm-trust":
        compare(TRUST_MODELS, TRUST_FIGURES, TRUST_METRICS, a.seeds or 20, a.agents or 2000)
    else:
        price_response(a.family, a.seeds or 20, a.agents or 2000)


if __name__ == "__main__":
    main()
