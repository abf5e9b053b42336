"""How long the default calibration should take: CPU seconds per model run at the calibration settings, and the
projected wall time of each stage on N cores (default 2). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_calibration.py [--cores 2] [--runs 6]

CPU time (not wall time) is measured so the projection holds for a quiet machine even when this one is busy.
The projection counts model runs only (stage budgets are upper bounds: ABC may stop earlier; every fit includes
its history-matching waves; recovery runs are counted at the fit's agent count, so they are underestimated when
recovery.n_agents is larger); emulator fitting, bookkeeping and process start-up add a little.
"""

import argparse
import time

from sim.calibration.calibration_config import CONFIG_TOML, load_config
from sim.running.runner import run_member


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    config = load_config(CONFIG_TOML, quick=args.quick)
    kwargs = {"n_agents": config.run.n_agents, "end": config.run.end}
    run_member(kwargs, 0)  # warm caches (catalogue, imports)
    cpu, wall = time.process_time(), time.perf_counter()
    for seed in range(args.runs):
        run_member(kwargs, seed)
    per_run = (time.process_time() - cpu) / args.runs
    per_run_wall = (time.perf_counter() - wall) / args.runs
    seeds = len(config.run.seeds)
    hm = config.history
    waves = hm.waves * (hm.runs * seeds + hm.noise_points * max(0, hm.noise_seeds - seeds))  # history matching
    stages = {
        "fit (upper bound)": waves + config.fit.max_simulations * seeds,
        "predictive": config.draws,
        "out_of_sample (upper bound)": waves + config.oos.max_simulations * seeds + config.oos_draws,
        "recovery (upper bound)": config.recovery_replicates * (
            waves + config.recovery.max_simulations * len(config.recovery_seeds)),
    }
    print(f"model run at {config.run.n_agents} agents to {config.run.end}: {per_run:.3f} s CPU "
          f"({per_run_wall:.3f} s wall on this machine now)")
    total = 0.0
    for name, runs in stages.items():
        seconds = runs * per_run / args.cores
        total += seconds
        print(f"{name:30s} {runs:6d} runs  ~{seconds / 60:5.1f} min on {args.cores} cores")
    print(f"{'total':30s} {'':6s}       ~{total / 60:5.1f} min on {args.cores} cores")


if __name__ == "__main__":
    main()
