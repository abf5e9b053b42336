"""How long the default calibration should take: CPU seconds per model run at the calibration settings (and per
run to 2030-12, as the uncertainty stage makes them), and the projected wall time of each stage on N cores
(default 2). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_calibration.py [--cores 2] [--runs 6] [--overhead FILE]

CPU time (not wall time) is measured so the projection holds for a quiet machine even when this one is busy.
Runs per stage are the budgets' upper bounds (ABC may stop earlier; every fit includes its history-matching
waves; recovery runs are counted at the fit's agent count, so they are underestimated when recovery.n_agents is
larger). Work other than model runs (emulator fits, NROY screening, bookkeeping) is added per stage from
EMULATOR_CPU_SECONDS and SERIAL_SECONDS, measured with benchmarks/profile_calibration.py (see there).
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's sim package, whatever the current directory

from sim.calibration.ablation import MECHANISMS
from sim.calibration.calibrate import BEST_CANDIDATES, BEST_SEEDS
from sim.calibration.calibration_config import CONFIG_TOML, load_config
from sim.calibration.uncertainty import SOBOL_SAMPLES, group_of
from sim.core.calendar import parse_month
from sim.inputs.targets import TARGETS_TOML, load_targets
from sim.running.runner import run_member

# CPU seconds besides the model runs, measured with one thread (OMP_NUM_THREADS=1) on 2026-12-02:
# one target's emulator on a wave's ~600 runs: three boosted fits on 400 runs, 0.45 s each (one fit on 600 runs:
# 0.67 s); screening 50,000 candidates: one boosted prediction 0.75 s, x 3 fold models x ~7 targets evaluated per
# point before two exceed the cutoff; the statistics of one simulated set for ~40 figures (profile_calibration.py
# --quick: _statistics 1.1 s for 30 sets).
EMULATOR_CPU_SECONDS = 1.35
SCREEN_CPU_SECONDS = 15.0
STATISTICS_CPU_SECONDS = 0.037
POSTERIOR_CSV = Path(__file__).resolve().parents[1] / "calibration" / "posterior.csv"


def posterior_set(row: int = 0) -> dict:
    """A parameter set of the adopted posterior (calibration/posterior.csv): the fit runs sets like it, whose
    higher re-evaluation rates make a run slower than at the defaults; empty when there is no posterior."""
    if not POSTERIOR_CSV.exists():
        return {}
    return pd.read_csv(POSTERIOR_CSV).drop(columns="weight").iloc[row].to_dict()


def cpu_per_run(kwargs: dict, runs: int) -> tuple[float, float]:
    """(CPU, wall) seconds per run of `kwargs` on seeds 0 .. runs-1, after one warm-up run."""
    run_member(kwargs, 0)
    cpu, wall = time.process_time(), time.perf_counter()
    for seed in range(runs):
        run_member(kwargs, seed)
    return (time.process_time() - cpu) / runs, (time.perf_counter() - wall) / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    config = load_config(CONFIG_TOML, quick=args.quick)
    per_run, per_run_wall = cpu_per_run({"n_agents": config.run.n_agents, "end": config.run.end}, args.runs)
    per_posterior_run, _ = cpu_per_run({"n_agents": config.run.n_agents, "end": config.run.end, **posterior_set()},
                                       args.runs)
    per_set = per_run + STATISTICS_CPU_SECONDS
    per_projection, _ = cpu_per_run({"n_agents": 2000, "end": "2030-12"}, max(2, args.runs // 3))
    seeds = len(config.run.seeds)
    hm = config.history
    wave = hm.runs * seeds + hm.noise_points * max(0, hm.noise_seeds - seeds)
    targets = [t for t in load_targets(TARGETS_TOML, missing_ok=False) if t.fit]
    fitted = len(targets)  # one emulator per fitted target and wave
    in_sample = sum(parse_month(t.end) <= parse_month(config.cutoff) for t in targets)
    stages = {  # name: (model runs, other CPU seconds)
        "fit (upper bound)": (hm.waves * wave + config.fit.max_simulations * seeds,
                              hm.waves * (fitted * EMULATOR_CPU_SECONDS + SCREEN_CPU_SECONDS)),
        "predictive, prior predictive, best set": (2 * config.draws + BEST_CANDIDATES * BEST_SEEDS, 0.0),
        "out_of_sample (upper bound)": ((hm.waves - 1) * wave + config.oos.max_simulations * seeds
                                        + config.oos_draws, hm.waves * (in_sample * EMULATOR_CPU_SECONDS
                                                                        + SCREEN_CPU_SECONDS)),
        "recovery (upper bound)": (config.recovery_replicates * (
            config.recovery.max_simulations * len(config.recovery_seeds) + 10 + (config.recovery_history_waves - 1)
            * wave), config.recovery_replicates * config.recovery_history_waves
            * (fitted * EMULATOR_CPU_SECONDS + SCREEN_CPU_SECONDS)),
        "hindcast (upper bound)": (len(config.hindcast_cutoffs) * (
            config.hindcast.max_simulations + config.hindcast_draws
            + 0.6 * (config.twin.max_simulations if config.twin else 0)), 0.0),  # a twin run ~0.6 of a model run
    }
    if config.ablation is not None:
        stages["ablation (upper bound)"] = ((1 + len(MECHANISMS)) * (config.ablation.max_simulations  # + reference
                                                                     + config.ablation_draws), 0.0)
    print(f"model run at {config.run.n_agents} agents to {config.run.end}: {per_run:.3f} s CPU "
          f"({per_run_wall:.3f} s wall on this machine now), {per_set:.3f} s with its statistics; to 2030-12 at 2,000 agents: {per_projection:.3f} s CPU")
    print(f"the same run at the posterior's first set: {per_posterior_run:.3f} s CPU (the stages below assume the "
          "defaults' time)")
    total = 0.0
    for name, (runs, other) in stages.items():
        seconds = (runs * per_set + other) / args.cores
        total += seconds
        print(f"{name:32s} {runs:7.0f} runs  ~{seconds / 60:5.1f} min on {args.cores} cores")
    groups = len({group_of(p.name) for p in config.priors}) + 2  # + projection assumptions and the seed
    design = SOBOL_SAMPLES * (groups + 2)
    seconds = design * per_projection / args.cores
    total += seconds
    print(f"{'uncertainty':32s} {design:7d} runs to 2030-12  ~{seconds / 60:5.1f} min on {args.cores} cores")
    print(f"{'total':32s} {'':7s}       ~{total / 60:5.1f} min on {args.cores} cores")


if __name__ == "__main__":
    main()
