"""Whole-process timings of `odsim run` with one and with two worker processes (issue 17: two workers at least
1.7x faster than one; CPU seconds per run the same whatever the number of workers).

Each configuration runs `--repeats` times, alternating, as a fresh process (import, ensemble, quantiles, plots
and all); wall and CPU seconds (user + system of the command and every process it starts, sampled from /proc)
are measured. The load average is printed: other work on the machine inflates the wall times.

    python benchmarks/bench_workers.py [--seeds 16] [--agents 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def session_cpu(sid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of every process in session `sid`."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def timed_run(args: list[str], program: tuple[str, ...] = ("-m", "sim.cli")) -> tuple[float, float]:
    """(wall, CPU) seconds of one `odsim` process (or another Python `program`) and every process it starts (run in
    a session of its own and sampled every 20 ms: workers are the forkserver's children, so the command's own
    rusage misses them)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *program, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        cpu.update(session_cpu(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"odsim {' '.join(args)} failed")
    return wall, sum(cpu.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores; python {platform.python_version()}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"odsim run --seeds {args.seeds} --agents {args.agents} --workers W, {args.repeats} runs each\n")
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for workers in results:
                out = Path(tmp) / f"w{workers}-{repeat}"
                results[workers].append(timed_run(["run", "--seeds", str(args.seeds), "--agents", str(args.agents),
                                                   "--workers", str(workers), "--out", str(out)]))
    print(f"{'workers':>7} {'wall s (each run)':>26} {'median':>7} {'CPU s (each run)':>26} {'median':>7}")
    medians = {}
    for workers, runs in results.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        medians[workers] = statistics.median(walls), statistics.median(cpus)
        print(f"{workers:>7} {' '.join(f'{w:7.1f}' for w in walls):>26} {medians[workers][0]:7.1f} "
              f"{' '.join(f'{c:7.1f}' for c in cpus):>26} {medians[workers][1]:7.1f}")
    print(f"\nspeed-up of 2 workers over 1 (median wall): {medians[1][0] / medians[2][0]:.2f}x (target >= 1.7x)")
    print(f"CPU seconds, 2 workers / 1 worker: {medians[2][1] / medians[1][1]:.2f} (target about 1)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
