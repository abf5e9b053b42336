"""Where a calibration's time goes: per stage, the CPU seconds of the jobs its executor maps (split by the
function mapped: model runs, emulator fits, NROY screening, ...) against the CPU seconds the parent spends alone
(serial bookkeeping), and the wall time that implies on N cores (parallel / N + serial). Everything runs in this
process (one worker) so each job's CPU time is measured exactly, whatever else loads the machine. Prints a table;
asserts nothing. Use --quick or a scaled-down --config, never the full default (it takes an hour and both cores).

    nice -n 10 .venv/bin/python benchmarks/profile_calibration.py --quick [--cores 2] [--config FILE]
"""

import argparse
import sys
import collections
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's sim package, whatever the current directory

from sim.calibration import calibrate as calibration
from sim.running.executor import Executor

STACK: list[str] = []
CPU: dict[str, float] = {}  # stage -> CPU seconds of this process over the stage (nested stages included)
PARALLEL: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0.0, 0])  # seconds, jobs


def _instrument() -> None:
    """Time every parallel map, attributed to the innermost timed stage and to the function mapped."""
    unordered, timed = Executor.unordered, calibration.CalibrationRun.timed

    def timed_unordered(self, fn, items):
        key = (STACK[-1] if STACK else "setup", getattr(fn, "__name__", str(fn)))

        def measured(item):  # in this process (one worker): the job's own CPU seconds
            start = time.process_time()
            try:
                return fn(item)
            finally:
                PARALLEL[key][0] += time.process_time() - start
                PARALLEL[key][1] += 1

        yield from unordered(self, measured, items)

    def stacked_timed(self, name, fn):
        STACK.append(name)
        start = time.process_time()
        try:
            return timed(self, name, fn)
        finally:
            CPU[name] = time.process_time() - start
            STACK.pop()

    Executor.unordered = timed_unordered
    calibration.CalibrationRun.timed = stacked_timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--config", type=Path, default=calibration.CONFIG_TOML)
    parser.add_argument("--cores", type=int, default=2, help="cores the projected wall time assumes")
    parser.add_argument("--stages", default=",".join(calibration.STAGES))
    args = parser.parse_args()
    _instrument()
    with tempfile.TemporaryDirectory() as out:
        summary = calibration.calibrate(args.config, out=Path(out), quick=args.quick, workers=1,
                                        progress=False, stages=tuple(args.stages.split(",")))
    print(f"{'stage':18s} {'CPU s':>7s} {'jobs s':>7s} {'serial s':>8s} {f'wall on {args.cores}':>9s}"
          "  jobs (function: CPU s, count)")
    for stage, cpu in CPU.items():
        maps = {fn: v for (s, fn), v in PARALLEL.items() if s == stage}
        parallel = sum(v[0] for v in maps.values())
        detail = ", ".join(f"{fn}: {v[0]:.1f} s, {v[1]}" for fn, v in sorted(maps.items(), key=lambda kv: -kv[1][0]))
        print(f"{stage:18s} {cpu:7.1f} {parallel:7.1f} {cpu - parallel:8.1f} {parallel / args.cores + cpu - parallel:9.1f}"
              f"  {detail}")
    rest = {k: v for k, v in PARALLEL.items() if k[0] not in CPU}
    for (stage, fn), v in rest.items():
        print(f"(untimed {stage}) {fn}: {v[0]:.1f} s, {v[1]} jobs")
    print("simulations:", summary.get("simulations"))


if __name__ == "__main__":
    main()
