"""How many agents do projections need? Compares, at several agent counts, the spread over members of the
headline 2030-12 shares (baseline levels and the paired security_bans difference) and the time per run.

Agent sampling adds noise on top of the stochastic releases and choices every member has anyway; when the
spread at a small agent count is close to the spread at 5000 (the model default), the smaller count is enough.
Run on a quiet machine: `.venv/bin/python benchmarks/bench_projection_noise.py [--members 20]`.
"""

from __future__ import annotations

import argparse
import time
import numpy as np

from sim.running.executor import Executor
from sim.running.project import load_spec
from sim.running.runner import run_member

METRICS = ["or_share_cn", "or_share_open", "ent_share_open_us", "share_cn_north_america", "share_cn_global_south"]


def one(job):
    kwargs, seed = job
    start = time.perf_counter()
    frame = run_member(kwargs, seed)
    return frame.loc["2030-12", METRICS].to_numpy(float), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 2000, 3000, 5000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = load_spec("baseline").model_kwargs()
    bans = load_spec("security_bans").model_kwargs()
    print(f"{args.members} members; spread = standard deviation over members, in percentage points")
    print("per metric: baseline mean, its spread, and the spread of the paired security_bans difference")
    print(f"{'agents':>7} {'s/run':>6}  " + "  ".join(f"{m[:26]:>26}" for m in METRICS))
    with Executor(args.workers) as executor:
        for n in args.agents:
            jobs = [({**kw, "n_agents": n, "end": "2030-12"}, s) for kw in (base, bans) for s in range(args.members)]
            results = list(executor.imap(one, jobs))
            values = np.array([r[0] for r in results]).reshape(2, args.members, len(METRICS))
            seconds = np.mean([r[1] for r in results])
            mean = 100 * np.nanmean(values[0], axis=0)
            level = 100 * np.nanstd(values[0], axis=0, ddof=1)
            diff = 100 * np.nanstd(values[1] - values[0], axis=0, ddof=1)
            print(f"{n:>7} {seconds:6.2f}  " + "  ".join(f"{m:4.1f} sd {a:4.1f} diff sd {b:4.1f}".rjust(26)
                                                      for m, a, b in zip(mean, level, diff)))


if __name__ == "__main__":
    main()
