"""Which projection assumption makes the 2030 intervals wide (issue 18/19; docs/ODD.md 7.12).

    .venv/bin/python tools/assumptions_screen.py [--agents 2000] [--seeds 10] [--levels 5] [--draws 100]
                                                 [--workers 2] [--out FILE]

At one parameter set (calibration/best.toml), 2023-01 to 2030-12, two measurements of the Chinese-origin and
open-weight shares of marketplace tokens in 2030-12:

- one at a time: each assumption (a parameter with a `drawn` range in sim/core/parameters.py) at `levels` evenly
  spaced values across its drawn range, the others at their midpoints, on `seeds` seeds. "with the seed fixed": the
  mean over seeds of the output's range across levels (the assumption's own effect); "seed varied": the 5-95% range
  of all its runs.
- fixing one: `draws` runs with every assumption drawn uniformly in its range (draw k on seed k), then the same runs
  with one assumption at its midpoint (paired: same seeds, same other draws), with the two price declines tied (the
  open one set to the closed one's draw: same marginal ranges, no drift of the relative price), and with all at their
  midpoints (the seed alone). The 5-95% range and standard deviation of each.

`--part oat` or `--part fix` runs one of the two.

The Hugging Face background assumptions reach no share (observation only, 7.8) and are left out.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.core.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS  # noqa: E402
from sim.running.executor import Executor  # noqa: E402

OUTPUTS = ("or_share_cn", "or_share_open")
END = "2030-12"
OBSERVATION_ONLY = ("hf_background_share", "hf_background_cn_us")
SEED_BASE = 7_000


def share_run(job: tuple[dict, int]) -> dict[str, float]:
    from sim.running.runner import run_member

    params, seed = job
    frame = run_member({**params, "end": END}, seed)
    return {o: float(frame.loc[END, o]) for o in OUTPUTS}


def run_all(executor: Executor, jobs: list[tuple[dict, int]]) -> pd.DataFrame:
    return pd.DataFrame(executor.gather(share_run, jobs, None))


def midpoint(name: str) -> float:
    return float(np.mean(PARAMETERS[name].drawn))


def spread(values: pd.Series) -> str:
    return f"{values.quantile(0.05):.2f}-{values.quantile(0.95):.2f} (sd {values.std():.3f})"


def one_at_a_time(executor: Executor, base: dict, names: list[str], levels: int, seeds: int) -> tuple[pd.DataFrame,
                                                                                                      list[str]]:
    middle = {n: midpoint(n) for n in names}
    jobs, keys = [], []
    for name in names:
        for level in np.linspace(*PARAMETERS[name].drawn, levels):
            for s in range(seeds):
                jobs.append(({**base, **middle, name: float(level)}, SEED_BASE + s))
                keys.append((name, float(level), s))
    oat = pd.concat([pd.DataFrame(keys, columns=["name", "level", "seed"]), run_all(executor, jobs)], axis=1)
    lines = [f"One at a time ({levels} levels x {seeds} seeds; others at midpoints): range across levels with the seed "
             "fixed (mean over seeds), mean by level, 5-95% of all runs", ""]
    for output in OUTPUTS:
        lines += [f"**{output}**", "", "| assumption | drawn range | range, seed fixed | mean by level | "
                  "5-95% (seed varied) |", "|---|---|---|---|---|"]
        rows = []
        for name, part in oat.groupby("name", sort=False):
            by_seed = part.groupby("seed")[output].agg(lambda v: v.max() - v.min()).mean()
            by_level = part.groupby("level")[output].mean()
            low, high = PARAMETERS[name].drawn
            rows.append((by_seed, f"| {name} | {low:.3g}-{high:.3g} | {by_seed:.3f} | "
                         f"{' / '.join(f'{v:.2f}' for v in by_level)} | {spread(part[output])} |"))
        lines += [r for _, r in sorted(rows, reverse=True)] + [""]
    return oat, lines


def fixing_one(executor: Executor, base: dict, names: list[str], draws: int, part: str) -> tuple[pd.DataFrame,
                                                                                                  list[str]]:
    rng = np.random.default_rng(SEED_BASE)
    drawn = [{n: float(rng.uniform(*PARAMETERS[n].drawn)) for n in names} for _ in range(draws)]
    middle = {n: midpoint(n) for n in names}
    configs: dict[str, object] = {"all drawn": lambda d: d}
    if part != "tied":
        configs.update({f"{n} fixed": (lambda d, n=n: {**d, n: middle[n]}) for n in names})
    configs["price declines tied (open = closed draw)"] = lambda d: {**d, "price_decline_open": d["price_decline_closed"]}
    if part != "tied":
        configs["all at midpoints (seed only)"] = lambda d: middle
    jobs, keys = [], []
    for label, values in configs.items():
        for k, d in enumerate(drawn):
            jobs.append(({**base, **values(d)}, SEED_BASE + 1000 + k))
            keys.append(label)
    fix = pd.concat([pd.Series(keys, name="config"), run_all(executor, jobs)], axis=1)
    lines = [f"All assumptions drawn vs one fixed at its midpoint ({draws} paired runs each: same seeds and other "
             "draws): 5-95% range (standard deviation)", "", "| runs | " + " | ".join(OUTPUTS) + " |",
             "|---|" + "---|" * len(OUTPUTS)]
    for label in configs:
        rows = fix[fix.config == label]
        lines.append(f"| {label} | " + " | ".join(spread(rows[o]) for o in OUTPUTS) + " |")
    return fix, lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part", choices=("all", "oat", "fix", "tied"), default="all",
                        help="tied: only all drawn against the price declines tied")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (markdown, and csv beside)")
    args = parser.parse_args()

    best = tomllib.loads((ROOT / "calibration" / "best.toml").read_text())["parameters"]
    base = {**best, "n_agents": args.agents}
    names = [n for n in PROJECTION_ASSUMPTIONS if n not in OBSERVATION_ONLY]
    lines = [f"best.toml, {args.agents:,} agents, outputs in {END}", ""]
    tables = {}
    with Executor(args.workers) as executor:
        if args.part in ("all", "oat"):
            tables["oat"], more = one_at_a_time(executor, base, names, args.levels, args.seeds)
            lines += more
        if args.part != "oat":
            tables["fix"], more = fixing_one(executor, base, names, args.draws, args.part)
            lines += more
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
        for name, table in tables.items():
            table.to_csv(args.out.with_suffix(f".{name}.csv"), index=False)


if __name__ == "__main__":
    main()
