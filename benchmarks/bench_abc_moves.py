"""How well the ABC-SMC sampler spends a fixed simulation budget on this model: epsilon reached, generations,
the moves' acceptance rates and wall seconds, for several sampler seeds. Prints figures; asserts nothing. (The
workers run under a forkserver, so their CPU time is not this process's children's: compare simulated sets, which
cost the same in both samplers, and wall time on a quiet machine.)

    .venv/bin/python benchmarks/bench_abc_moves.py [--checkout PATH] [--tag NAME] [--agents 1000]
        [--population 100] [--budget 1200] [--samplers 3] [--keep F] [--move-failure F] [--floor] [--cache DIR]

`--checkout` chooses whose sim package runs (e.g. main's, to compare the sampler there with this one): both share
one history-matching wave (cached in --cache; its code and seed are the same in both), so the fits differ only
in the sampler. Each sampler seed is a run_abc stream. `--keep` and `--move-failure` try other values of those
constants. `--floor` also measures the noise floor at the best set of the first fit (recovery.noise_floor_at over
FLOOR_SEEDS data seeds), the figure epsilon is compared against.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

FLOOR_SEEDS = 24  # data seeds of the noise floor at the best set
FLOOR_SEED_BASE = 900_000  # its seeds: outside every seed the fits draw (fresh seeds are large random integers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--tag", default="new")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1200)
    parser.add_argument("--samplers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--floor", action="store_true")
    parser.add_argument("--keep", type=float, help="try another abc_smc.KEEP_FRACTION")
    parser.add_argument("--move-failure", type=float, help="try another abc_smc.MOVE_FAILURE")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-abc-moves"))
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))

    import sim.calibration.abc_smc as abc_smc
    from sim.calibration.abc_smc import SHARED_FIRST_WAVE, run_abc
    from sim.calibration.calibration_config import CONFIG_TOML, Budget, load_config
    from sim.calibration.history_matching import history_match
    from sim.calibration.simulator import Simulator
    from sim.inputs.targets import TARGETS_TOML, load_targets
    from sim.running.executor import Executor

    abc_smc.KEEP_FRACTION = args.keep or abc_smc.KEEP_FRACTION  # both read in this process, when a generation starts
    abc_smc.MOVE_FAILURE = args.move_failure or abc_smc.MOVE_FAILURE
    config = load_config(CONFIG_TOML)
    config = replace(config, history=replace(config.history, waves=1, runs=300, noise_points=10, candidates=20000))
    targets = [t for t in load_targets(TARGETS_TOML, missing_ok=False) if t.fit]
    run = replace(config.run, n_agents=args.agents)
    budget = Budget(args.population, 15, 0.3, args.budget, 0.04)
    cache = args.cache / f"{args.agents}-{args.population}"
    print(f"# {args.tag}: sim from {args.checkout}; {args.agents} agents, population {args.population}, "
          f"ABC budget {args.budget} sets after one history-matching wave of {config.history.runs}; "
          f"keep fraction {abc_smc.KEEP_FRACTION}, move failure {abc_smc.MOVE_FAILURE}")
    with Executor(args.workers) as executor:
        matched = history_match("bench-hm", Simulator(config.priors, targets, run), config.history,
                                args.population, config.seed, 0, cache, executor, progress=False,
                                shared=cache / SHARED_FIRST_WAVE)
    first = None
    for stream in range(1, args.samplers + 1):
        wall = time.perf_counter()
        with Executor(args.workers) as executor:
            result = run_abc(f"{args.tag}-{stream}", targets, config, budget, run, cache, executor, progress=False,
                             stream=stream, initial=(matched.initial_u, matched.initial_stats))
        wall = time.perf_counter() - wall
        g = result.generations
        first = first if first is not None else result
        print(f"{args.tag} sampler {stream}: epsilon {g.epsilon.iloc[-1]:.3f} after {len(g)} generations, "
              f"{int(g.simulations.sum())} sets; acceptance {' '.join(f'{a:.3f}' for a in g.acceptance.iloc[1:])}; "
              + (f"scale {' '.join(f'{s:.3g}' for s in g.scale.iloc[1:])}; " if "scale" in g else "")
              + f"min distance {result.particles.distance.min():.3f}; wall {wall:.0f} s; "
              f"stopped: {result.stopped}")
    if args.floor:
        best = first.particles.iloc[int(first.particles.distance.argmin())]
        from sim.calibration.recovery import noise_floor_at  # this checkout's: main's has none

        with Executor(args.workers) as executor:
            floor = noise_floor_at({p.name: float(best[p.name]) for p in config.priors}, targets, run,
                                   FLOOR_SEED_BASE, FLOOR_SEEDS, executor)
        print(f"noise floor at the best set of {args.tag} sampler 1 ({FLOOR_SEEDS} data seeds, 90% quantile): "
              f"{floor:.3f}")


if __name__ == "__main__":
    main()
