"""What branching saves in the projection suite (issue 17): every shipped scenario's members run alone (as before
branching) and branched from their member's baseline (as `odsim project` runs them), at a reduced size.

    .venv/bin/python benchmarks/bench_projection_branching.py [--members 20] [--agents 2000] [--workers 1]

Each way runs as a fresh child process (the members only: no aggregation or charts) and is measured by the CPU
seconds of that process (resource.getrusage(RUSAGE_CHILDREN)), which other work on a shared machine does not
inflate; with --workers above 1, by the CPU seconds of it and its workers sampled from /proc (getrusage misses
the workers, the forkserver's children). Wall seconds and the load average are printed too. Month-steps
simulated (a run's first month counts as one) and the model copies come from the plan; a child that only
imports and plans measures the start-up both ways pay. The two ways' member files
are then compared: they must be identical.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_workers import timed_run  # noqa: E402

from sim.core.calendar import parse_month  # noqa: E402
from sim.running import project as P  # noqa: E402
from sim.running.executor import Executor  # noqa: E402
from sim.inputs.posterior import POSTERIOR_CSV, parameter_sets  # noqa: E402

MODES = ("alone", "branched")
STARTUP = "startup"  # a child that imports and plans but runs nothing: the fixed cost in both ways' figures


def suite(members: int, agents: int) -> tuple[list[P.Job], dict[int, P.Job]]:
    """Every shipped scenario's jobs, as `odsim project` makes them, and the baseline trunks by member."""
    draws = parameter_sets(POSTERIOR_CSV)
    plan = {s.name: P.make_jobs(s, members, agents, 0, draws) for s in P.load_specs(None)}
    return [j for jobs in plan.values() for j in jobs], {j.member: j for j in plan[P.BASELINE]}


def trunks_for(mode: str, trunks: dict[int, P.Job]) -> dict[int, P.Job]:
    return trunks if mode == "branched" else {}  # no trunk: every job runs alone, as before branching


def month_steps(tasks: list[P.Task]) -> tuple[int, int]:
    """(months simulated, model copies) of the tasks: a trunk to its end or to its last branch's month before,
    and each branch from its month to the end."""
    start, end = parse_month("2023-01"), parse_month(P.END)
    months = copies = 0
    for task in tasks:
        branch_months = [month for _, month in task.branches]
        months += (end if task.save_trunk else max(branch_months) - 1) - start + 1
        months += sum(end - month + 1 for month in branch_months)
        copies += len(branch_months)
    return months, copies


def child(mode: str, members: int, agents: int, workers: int, out: Path) -> None:
    jobs, trunks = suite(members, agents)
    if mode == STARTUP:
        return
    with Executor(workers) as executor:
        P.run_jobs(jobs, out, executor, progress=False, trunks=trunks_for(mode, trunks))


def measured(mode: str, args: argparse.Namespace, out: Path) -> tuple[float, float, float]:
    """(wall, CPU, CPU sampled) seconds of one mode's child process: CPU from getrusage of the reaped children
    (complete with one worker: the jobs run in the child), sampled CPU from /proc (bench_workers.timed_run: also
    counts worker processes, which are the forkserver's children and never reaped by the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, sampled = timed_run(["--child", mode, "--members", str(args.members), "--agents", str(args.agents),
                               "--workers", str(args.workers), "--out", str(out)], program=(__file__,))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sampled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--agents", type=int, default=P.PROJECTION_AGENTS)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--child", choices=(*MODES, STARTUP), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.members, args.agents, args.workers, Path(args.out))
        return
    jobs, trunks = suite(args.members, args.agents)
    print(f"{len(P.available())} scenarios x {args.members} members at {args.agents} agents = {len(jobs)} runs, "
          f"{args.workers} worker(s); load average before: {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        startup_wall, startup, startup_sampled = measured(STARTUP, args, Path(tmp) / STARTUP)
        print(f"start-up (imports, plan; in both figures below): {startup:.1f} s CPU (sampled {startup_sampled:.1f}), "
              f"{startup_wall:.1f} s wall")
        for mode in MODES:
            months, copies = month_steps(P.plan_tasks(jobs, trunks_for(mode, trunks)))
            wall, cpu, sampled = measured(mode, args, Path(tmp) / mode)
            if args.workers > 1:  # getrusage misses the workers
                cpu, startup = sampled, startup_sampled
            results[mode] = months, cpu - startup
            print(f"{mode:>8}: {months:6d} month-steps, {copies:4d} model copies, {cpu:6.1f} s CPU "
                  f"({cpu - startup:.1f} s without start-up; sampled {sampled:.1f}), {wall:6.1f} s wall "
                  f"(load average {os.getloadavg()[0]:.1f})")
        files = sorted(p.relative_to(Path(tmp) / MODES[0]) for p in (Path(tmp) / MODES[0]).rglob("m*.npz"))
        same = all(np.array_equal(P.load_member(Path(tmp) / MODES[0] / f)[1], P.load_member(Path(tmp) / MODES[1] / f)[1],
                                  equal_nan=True) for f in files)
    (months_alone, cpu_alone), (months_branched, cpu_branched) = results.values()
    print(f"branched / alone: month-steps {months_branched / months_alone:.3f}, CPU without start-up "
          f"{cpu_branched / cpu_alone:.3f}; "
          f"{len(files)} member files, identical in both ways: {same}")
    full = len(P.available()) * P.DEFAULT_MEMBERS / len(jobs)
    print(f"full suite ({P.DEFAULT_MEMBERS} members), scaled: about {cpu_alone * full:.0f} s CPU alone, "
          f"{cpu_branched * full:.0f} s branched (members only; / workers on a quiet machine)")


if __name__ == "__main__":
    main()
