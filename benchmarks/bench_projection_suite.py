"""Times the projection suite (`odsim project`: every shipped scenario, 200 members each) as a whole process, then
a rerun, which must reuse every checkpointed member. Target (issue 17): under 3 minutes on a quiet 2-core machine.

    .venv/bin/python benchmarks/bench_projection_suite.py [--members 200] [--agents 2000] [--workers W] [--out DIR]

Prints wall and CPU seconds (the command and every worker, from /proc: see bench_workers.timed_run), members per
CPU second and the load average. On a shared machine the wall time measures the other jobs too; CPU seconds do
not, so the suite's time on a quiet machine is about CPU seconds / workers. A smaller --members gives a scaled
run: the members' cost grows with their number, the writing of results (charts) does not.
Writes to a temporary folder unless --out is given (use results/projections to keep the results).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_workers import timed_run  # noqa: E402

from sim.running.executor import default_workers  # noqa: E402
from sim.running.project import DEFAULT_MEMBERS, PROJECTION_AGENTS, available  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--agents", type=int, default=PROJECTION_AGENTS)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--out")
    args = parser.parse_args()
    runs = len(available()) * args.members
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        command = ["project", "--members", str(args.members), "--agents", str(args.agents), "--workers",
                   str(args.workers), "--quiet", "--out", args.out or str(Path(tmp) / "projections")]
        first_wall, first_cpu = timed_run(command)
        load = os.getloadavg()[0]
        rerun_wall, rerun_cpu = timed_run(command)
    print(f"suite: {len(available())} scenarios x {args.members} members at {args.agents} agents = {runs} runs, "
          f"{args.workers} workers: {first_wall:.0f} s wall ({first_wall / 60:.1f} min; target < 3 min), "
          f"{first_cpu:.0f} s CPU = {runs / first_cpu:.2f} members per CPU second; load average {load:.1f}")
    print(f"  on a quiet machine about {first_cpu / args.workers:.0f} s wall (CPU seconds / workers)")
    print(f"rerun, every member reused (aggregation and charts only): {rerun_wall:.0f} s wall, {rerun_cpu:.0f} s CPU")
    member = (first_cpu - rerun_cpu) / runs
    full = len(available()) * DEFAULT_MEMBERS
    print(f"a member costs {member:.2f} s CPU with everything around it (suite minus rerun, per run); the full "
          f"suite's {full} runs: about {(full * member + rerun_cpu) / args.workers:.0f} s on a quiet machine")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
