"""Morris screen of the hand-set constants on the 2030 outputs (issue 18, section 3).

    .venv/bin/python tools/constants_screen.py write [--trajectories 12] [--replicates 2] [--agents 1000]
    odsim sensitivity scenarios/sweeps/constants_screen.toml --workers 2
    odsim sweep scenarios/sweeps/constants_screen_noise.toml --workers 2
    odsim sweep scenarios/sweeps/constants_screen_reseed.toml --workers 2
    .venv/bin/python tools/constants_screen.py report [--out FILE]
    .venv/bin/python tools/constants_screen.py external [--draws 4] [--agents 1000]

`write` reads the parameter table (sim/core/parameters.py) and the calibration's priors and writes three sweep specs:

- constants_screen.toml, a Morris design over every constant: a numeric parameter that is neither fitted (flagged
  behavioural, given a prior in calibration/config.toml, or an observation scale solved per parameter set) nor
  drawn per run (a `drawn` range), nor run structure or a scenario knob (EXCLUDED below), each over its whole table
  range. For scale, it also sweeps every drawn projection assumption over its drawn range and the fitted parameters
  in REFERENCE_FITTED over their posterior 90% interval. Replicate r of every point runs on seed `seed + r` with
  the fitted parameters of posterior draw r (`posterior = true`, common seeds): each elementary effect is averaged
  over `replicates` posterior draws and the same draws of the projection assumptions that are not swept.
- constants_screen_noise.toml, the noise reference: the same settings (common seeds, same posterior draws) at
  NOISE_POINTS values of NOISE_DUMMY a negligible step apart. The step flips a few agents' initial awareness, and
  the agents' paths diverge from there as they do after any change of a constant, while the labs' releases (their
  own streams) stay the same. The spread of the points' replicate means is the noise in an elementary effect of a
  change that re-draws nothing else: a lower bound, as a change that rebuilds the network or the workloads re-draws
  more.
- constants_screen_reseed.toml, the same points each on its own seeds (common_seeds = false): population, network,
  releases and imputed capabilities re-drawn too, the upper bound.

`external` moves module-level constants that are not in the table (EXTERNAL: the population's regional shares and
capability slack, a licence penalty) one at a time across a range, in this process, and prints their effects.

`report` reads the finished sweeps and writes the markdown table for docs/ODD.md: each constant's mu* relative to
the largest mu* among the reference parameters and to the noise mu*, and a verdict. New parameters enter the screen
when `write` is run again.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.core import agents, population  # noqa: E402
from sim.calibration.calibration_config import load_config  # noqa: E402
from sim.core.parameters import PARAMETERS  # noqa: E402
from sim.inputs.posterior import load_posterior, parameter_sets  # noqa: E402
from sim.inputs.scenario import SCENARIO_DIR  # noqa: E402
from sim.statistics import weighted_quantiles  # noqa: E402
from sim.exploration.sweep import default_folder, read_results  # noqa: E402
from sim.inputs.sweep_spec import load_spec  # noqa: E402
from sim.inputs.targets import OBSERVATION_SCALES  # noqa: E402

SWEEPS = ROOT / "scenarios" / "sweeps"
SPEC = SWEEPS / "constants_screen.toml"
NOISE_SPECS = {"noise": True, "reseed": False}  # constants_screen_<name>.toml -> common seeds
OBSERVABLES = ("or_share_cn", "or_share_open", "ent_share_open_us")
MONTH = "2030-12"
LEVELS = 4
DELTA = LEVELS / (2 * (LEVELS - 1))  # SALib's Morris step in unit coordinates: mu* = mean |change| / DELTA
# Parameters that are numeric and neither fitted nor drawn but are not hand-set constants of the baseline.
EXCLUDED = {
    "frontier_shift": "scenario knob: 0 in the baseline, moved only by scenario shocks",
    "price_decline_factor": "scenario knob: 1 in the baseline, moved only by scenario shocks",
    "task_fit_sd": "construct switched off in the baseline (0; docs/ODD.md 7.4): an option, not a constant",
}
# Fitted parameters swept as references (over their posterior 90% interval): the two largest groups of the
# calibration report's grouped Sobol indices (price and capability; trust by origin) and the drivers the issue-18
# review named (ecosystem and peer weights, developers' re-evaluation rate).
REFERENCE_FITTED = ("price_sensitivity", "capability_weight", "quality_weight", "trust_cn_shared",
                    "trust_cn_north_america", "ecosystem_weight", "peer_weight", "switch_rate_developer")
LOG_RATIO = 20  # a positive range spanning at least this factor is swept in log space
LITTLE = 0.1  # "matters little": mu* below this fraction of the largest reference mu* on every output
MATTERS = 0.25  # "matters": at least this fraction on some output; in between "minor"
NOISE_POINTS = 12
# Noise reference: a parameter moved in steps too small to matter (0.005 of agents' initial awareness of GPT: a few
# agents of a thousand) that still re-draw the agents' paths from month one.
NOISE_DUMMY = "initial_awareness"
NOISE_STEP = 0.005


def fitted() -> dict[str, str]:
    """Fitted parameters and how: the calibration's priors (behavioural flag or not) and the solved scales."""
    out = {name: "observation scale solved per parameter set" for name in OBSERVATION_SCALES}
    out.update({p.name: "fitted (prior in calibration/config.toml)" for p in load_config().priors})
    out.update({name: "fitted (behavioural)" for name, p in PARAMETERS.items() if p.behavioural})
    return out


def classify() -> dict[str, str]:
    """Every parameter of the table -> 'constant' or why it is not screened as one."""
    how_fitted = fitted()
    out = {}
    for name, p in PARAMETERS.items():
        if p.kind not in (int, float):
            out[name] = "not a number (switch or label)"
        elif p.source == "structural":
            out[name] = "run structure"
        elif p.drawn:
            out[name] = "drawn per run (projection assumption)"
        elif name in how_fitted:
            out[name] = how_fitted[name]
        else:
            out[name] = EXCLUDED.get(name, "constant")
    return out


def constants() -> list[str]:
    return [name for name, why in classify().items() if why == "constant"]


def posterior_interval(name: str) -> tuple[float, float]:
    """The fitted parameter's weighted posterior 5-95% interval (its prior range without a posterior)."""
    table = load_posterior()
    if table is None or name not in table.columns:
        prior = {p.name: p for p in load_config().priors}[name]
        return float(prior.low), float(prior.high)
    low, high = weighted_quantiles(table[name].to_numpy(), table["weight"].to_numpy(), [0.05, 0.95])
    return float(low), float(high)


def axis(name: str, low: float, high: float) -> dict:
    """A range for the spec, rounded to 4 digits within the table's bounds."""
    p = PARAMETERS[name]
    out = {"low": max(p.low, float(f"{low:.4g}")), "high": min(p.high, float(f"{high:.4g}"))}
    if out["low"] > 0 and out["high"] / out["low"] >= LOG_RATIO:
        out["log"] = True
    return out


def axes(references: tuple[str, ...] = REFERENCE_FITTED) -> dict[str, dict]:
    """Swept parameters: the constants over their table range, then the references."""
    out = {name: axis(name, PARAMETERS[name].low, PARAMETERS[name].high) for name in constants()}
    out.update({name: axis(name, *p.drawn) for name, p in PARAMETERS.items() if p.drawn})
    out.update({name: axis(name, *posterior_interval(name)) for name in references})
    return out


def _common(agents: int, replicates: int, folder: Path) -> dict:
    scenario = Path(os.path.relpath(SCENARIO_DIR / "baseline.toml", folder.resolve())).as_posix()
    return {"scenario": scenario, "replicates": replicates, "posterior": True, "months": [MONTH],
            "observables": list(OBSERVABLES), "fixed": {"n_agents": agents}}


def spec(trajectories: int, replicates: int, agents: int, seed: int, folder: Path = SWEEPS) -> dict:
    swept = axes()
    n_runs = trajectories * (len(swept) + 1) * replicates
    return {"name": "constants_screen",
            "description": f"Morris screen of {len(constants())} hand-set constants on the 2030-12 marketplace "
                           f"and US enterprise shares, with {len(swept) - len(constants())} fitted and drawn "
                           f"references ({n_runs} runs)",
            "design": "morris", "samples": trajectories, "levels": LEVELS, "seed": seed,
            **_common(agents, replicates, folder), "parameters": swept,
            "sensitivity": {"outputs": [f"{o}@{MONTH}" for o in OBSERVABLES]}}


def noise_spec(points: int, replicates: int, agents: int, seed: int, folder: Path = SWEEPS, kind: str = "noise"
               ) -> dict:
    """`points` values of NOISE_DUMMY a step apart, on common seeds: each step changes a few agents' initial
    awareness (a uniform draw against the threshold) and nothing else, so what the points differ by is mostly the
    agents' paths re-drawn, as any change of a constant re-draws them."""
    default = PARAMETERS[NOISE_DUMMY].default
    values = [round(default + k * NOISE_STEP, 6) for k in range(points)]
    common = NOISE_SPECS[kind]
    return {"name": f"constants_screen_{kind}",
            "description": f"Seed noise of the constants screen: {points} values of {NOISE_DUMMY} "
                           f"{values[0]}..{values[-1]}, the same posterior draws, "
                           + ("common seeds" if common else "each point on its own seeds"),
            "design": "grid", "seed": seed, "common_seeds": common, **_common(agents, replicates, folder),
            "parameters": {NOISE_DUMMY: {"values": values}}}


HEADER = """# Written by tools/constants_screen.py from the parameter table (sim/core/parameters.py) and the calibration's
# priors and posterior; do not edit by hand (rerun `tools/constants_screen.py write`). docs/ODD.md 7.11.
#   odsim {command} scenarios/sweeps/{name}.toml --workers 2
"""


def write(path: Path, content: dict) -> None:
    command = "sensitivity" if content["design"] == "morris" else "sweep"
    path.write_text(HEADER.format(command=command, name=content["name"]) + tomli_w.dumps(content))


# --- report ------------------------------------------------------------------------------------------------
def noise_path(kind: str, folder: Path = SWEEPS) -> Path:
    return folder / f"constants_screen_{kind}.toml"


def noise_mu_star(noise_folder: Path) -> pd.Series:
    """Expected |elementary effect| of a change that only re-draws the agents' paths: mean over pairs of points of
    the difference of their replicate means, divided by the Morris step."""
    table = read_results(noise_folder, columns=["point", "replicate", *OBSERVABLES], months=[MONTH])
    means = table.groupby("point")[list(OBSERVABLES)].mean()
    return pd.Series({o: np.mean([abs(a - b) for a, b in itertools.combinations(means[o], 2)]) / DELTA
                      for o in OBSERVABLES})


def mu_star(indices: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Parameter x observable table of Morris mu* (or its confidence half-width)."""
    out = indices[indices["index"] == "mu_star"].pivot(index="parameter", columns="output", values=column)
    out.columns = [c.split("@")[0] for c in out.columns]
    return out[list(OBSERVABLES)]


def verdict(ratio: float) -> str:
    return "matters little" if ratio < LITTLE else "minor" if ratio < MATTERS else "matters"


def screen_table(indices: pd.DataFrame, noise: pd.Series, names: list[str]) -> pd.DataFrame:
    """Per constant: mu* on each output, its confidence half-width and ratio to the largest reference mu*; the
    largest ratio to `noise`; the verdict from the largest ratio to the top reference. Sorted by that ratio."""
    mu, conf = mu_star(indices), mu_star(indices, "conf")
    top = mu.drop(index=names).max()
    rows = []
    for name in names:
        row = {"parameter": name}
        for o in OBSERVABLES:
            row[f"{o} mu*"], row[f"{o} conf"], row[f"{o} / top"] = mu.loc[name, o], conf.loc[name, o], \
                mu.loc[name, o] / top[o]
        row["/ top"] = max(row[f"{o} / top"] for o in OBSERVABLES)
        row["/ noise"] = max(mu.loc[name, o] / noise[o] for o in OBSERVABLES)
        row["verdict"] = verdict(row["/ top"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("parameter").sort_values("/ top", ascending=False)


def report() -> str:
    screen = load_spec(SPEC)
    indices = pd.read_csv(default_folder(screen) / "sensitivity" / "indices.csv")
    low, high = (noise_mu_star(default_folder(load_spec(noise_path(kind)))) for kind in NOISE_SPECS)
    names = [a.name for a in screen.axes if classify()[a.name] == "constant"]
    table = screen_table(indices, high, names)
    references = mu_star(indices).drop(index=names)
    lines = [f"Morris screen: {screen.samples} trajectories x {len(screen.axes) + 1} points x {screen.replicates} "
             f"posterior draws = {screen.n_runs()} runs of {screen.fixed['n_agents']:,} agents to {MONTH} "
             f"({len(names)} constants, {len(references)} references). mu* = mean |change of the output| per "
             f"move across the whole swept range (Morris step {DELTA:.2f} of the range, rescaled), "
             "+- the 95% bootstrap half-width; in brackets, the ratio to the largest reference mu* on that output.",
             "", "Largest reference mu* (fitted over the posterior 90% interval, drawn over the drawn range): "
             + "; ".join(f"{o} {references[o].max():.3f} ({references[o].idxmax()})" for o in OBSERVABLES) + ".",
             "", f"Noise mu* (steps of {NOISE_DUMMY} too small to matter; common seeds, lower bound / own seeds, "
             "upper bound): " + "; ".join(f"{o} {low[o]:.3f} / {high[o]:.3f}" for o in OBSERVABLES) + ".", "",
             f"Verdict from the largest ratio to the top reference: below {LITTLE} matters little, below {MATTERS} "
             "minor, else matters. Last but one column: the largest ratio to the noise's upper bound.", "",
             "| constant | range | " + " | ".join(OBSERVABLES) + " | / noise (upper) | verdict |",
             "|---|---|" + "---|" * len(OBSERVABLES) + "---|---|"]
    for name, row in table.iterrows():
        a = next(x for x in screen.axes if x.name == name)
        span = f"{a.low:g}-{a.high:g}" + (" (log)" if a.log else "")
        cells = [f"{row[f'{o} mu*']:.3f} +- {row[f'{o} conf']:.3f} ({row[f'{o} / top']:.2f})" for o in OBSERVABLES]
        lines.append(f"| {name} | {span} | " + " | ".join(cells) + f" | {row['/ noise']:.2f} | {row['verdict']} |")
    lines += ["", "| reference | range | " + " | ".join(f"{o} mu*" for o in OBSERVABLES) + " |",
              "|---|---|" + "---|" * len(OBSERVABLES)]
    for name in references.sort_values(list(OBSERVABLES), ascending=False).index:
        a = next(x for x in screen.axes if x.name == name)
        lines.append(f"| {name} ({classify()[name].split(' (')[0]}) | {a.low:.3g}-{a.high:.3g} | "
                     + " | ".join(f"{references.loc[name, o]:.3f}" for o in OBSERVABLES) + " |")
    return "\n".join(lines) + "\n"


# --- constants outside the table: one at a time, in this process --------------------------------------------
@dataclass(frozen=True)
class External:
    """A module-level constant (a dict read at run time), moved across a range in place: `keys` set to the value,
    or, with `scale`, their original values multiplied by it."""

    label: str
    table: dict
    keys: tuple[str, ...]
    low: float
    high: float
    scale: bool = False

    def set(self, value: float, original: dict) -> None:
        for key in self.keys:
            base = original[key]
            self.table[key] = (tuple(value * x for x in base) if isinstance(base, tuple) else value * base) \
                if self.scale else value


EXTERNAL = (
    External("REGION_MARKETPLACE china, restricted (0.2, 0.5; documented range 0.1-1)", population.REGION_MARKETPLACE,
             ("china", "restricted"), 0.1, 1.0),
    External("REGION_DEMAND china (0.15) x 0.5-1.5 (documented +-50%)", population.REGION_DEMAND, ("china",), 0.5,
             1.5, scale=True),
    External("REGION_DEMAND north_america (0.40) x 0.5-1.5 (documented +-50%)", population.REGION_DEMAND,
             ("north_america",), 0.5, 1.5, scale=True),
    External("USE_SLACK chat_roleplay (10-25 ECI) x 0.5-1.5 (no documented range)", population.USE_SLACK,
             ("chat_roleplay",), 0.5, 1.5, scale=True),
    External("USE_SLACK coding, agents (0-4, 0-6 ECI) x 0.5-1.5 (no documented range)", population.USE_SLACK,
             ("coding", "agents"), 0.5, 1.5, scale=True),
    External("LICENCE_PENALTY conditional (0.5) x 0.5-1.5 (no documented range)", agents.LICENCE_PENALTY,
             ("conditional",), 0.5, 1.5, scale=True),
)


def external_effects(draws: int, n_agents: int, seed: int) -> pd.DataFrame:
    """Each EXTERNAL constant at its low and high end, everything else as in the screen (baseline, posterior draw
    r and seed `seed + r` for r < draws): mean over draws of |output at high - output at low|, Morris's elementary
    effect over the whole range (comparable with mu*). Runs in this process: the constants are changed in place."""
    from sim.running.runner import run_member

    base = {**load_spec(SPEC).base_kwargs(), "n_agents": n_agents}
    draw = parameter_sets()
    rows = []
    for factor in EXTERNAL:
        original = dict(factor.table)
        ends = {}
        try:
            for end in ("low", "high"):
                factor.set(getattr(factor, end), original)
                ends[end] = np.array([run_member({**(draw(r) if draw else {}), **base}, seed + r)
                                      .loc[MONTH, list(OBSERVABLES)].to_numpy(float) for r in range(draws)])
        finally:
            factor.table.update(original)
        rows.append({"constant": factor.label, **dict(zip(OBSERVABLES, np.abs(ends["high"] - ends["low"]).mean(0)))})
    return pd.DataFrame(rows).set_index("constant")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the two sweep specs from the parameter table")
    w.add_argument("--trajectories", type=int, default=12)
    w.add_argument("--replicates", type=int, default=2, help="posterior draws (and seeds) per design point")
    w.add_argument("--agents", type=int, default=1000)
    w.add_argument("--seed", type=int, default=18)
    w.add_argument("--dir", type=Path, default=SWEEPS, help="where to write the specs")
    e = sub.add_parser("external", help="one-at-a-time effects of constants outside the table (in this process)")
    e.add_argument("--draws", type=int, default=4, help="posterior draws (and seeds) per end of each range")
    e.add_argument("--agents", type=int, default=1000)
    e.add_argument("--seed", type=int, default=18)
    r = sub.add_parser("report", help="markdown table from the finished sweeps")
    r.add_argument("--out", type=Path, help="write the table here as well as to stdout")
    args = parser.parse_args(argv)
    if args.command == "write":
        main_spec = spec(args.trajectories, args.replicates, args.agents, args.seed, args.dir)
        write(args.dir / SPEC.name, main_spec)
        paths = [args.dir / SPEC.name]
        for kind in NOISE_SPECS:
            paths.append(noise_path(kind, args.dir))
            write(paths[-1], noise_spec(NOISE_POINTS, args.replicates, args.agents, args.seed + 1, args.dir, kind))
        runs = sum(load_spec(path).n_runs() for path in paths)
        print(f"wrote {', '.join(map(str, paths))}: {len(constants())} constants, "
              f"{len(main_spec['parameters'])} swept parameters, {runs} runs in all")
        return 0
    if args.command == "external":
        table = external_effects(args.draws, args.agents, args.seed)
        print("| constant (module level) | " + " | ".join(f"{o}: effect" for o in OBSERVABLES) + " |")
        print("|---|" + "---|" * len(OBSERVABLES))
        for label, row in table.iterrows():
            print(f"| {label} | " + " | ".join(f"{row[o]:.3f}" for o in OBSERVABLES) + " |")
        return 0
    text = report()
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
