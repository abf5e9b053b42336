"""Times the full projection suite (`odsim project`: every shipped scenario, 200 members each) and then a rerun,
which must reuse every checkpointed member. Target: under 15 minutes on a quiet 2-core machine.

    .venv/bin/python benchmarks/bench_projection_suite.py [--members 200] [--agents 2000] [--out DIR]

Writes to a temporary folder unless --out is given (use results/projections to keep the results).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sim.running.project import DEFAULT_MEMBERS, PROJECTION_AGENTS, project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--agents", type=int, default=PROJECTION_AGENTS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        start = time.perf_counter()
        report = project(out=out, members=args.members, agents=args.agents, workers=args.workers)
        first = time.perf_counter() - start
        start = time.perf_counter()
        rerun = project(out=out, members=args.members, agents=args.agents, workers=args.workers)
        second = time.perf_counter() - start
    runs = report.ran + report.reused
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average at end: {os.getloadavg()[0]:.1f}")
    print(f"suite: {len(report.scenarios)} scenarios x {report.members} members at {report.agents} agents = {runs} "
          f"runs ({report.ran} run now) in {first:.0f} s ({first / 60:.1f} min; target < 15 min)")
    print(f"rerun: {rerun.ran} runs, {rerun.reused} reused, {second:.0f} s (aggregation and plots only)")


if __name__ == "__main__":
    main()
