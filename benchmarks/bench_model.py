"""Benchmark of the core model; prints measured figures (no pass/fail: targets and machine go in the README).

Targets (issue 17): >= 10 million agent-steps per second at 100,000 agents on one core and >= 50 times an
idiomatic per-agent Mesa model doing the same kind of work (benchmarks/mesa_reference.py), measured in the same
run; 1,000,000 agents (build + 12 months) in under 1 GB. Also printed: throughput at 10,000 and 1,000,000
agents, the default baseline run's time, and the time to import the model and run its first step with the
compiled kernels cached (every later process) and with an empty cache (once per machine or clone).

CPU time of this process is measured, but on a machine shared with other work the figures still move: run it
a few times and report the range.

    make bench            # or: .venv/bin/python benchmarks/bench_model.py [--skip-million] [--skip-cold]
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):  # one core
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's sim package, whatever the current directory
sys.path.insert(1, str(Path(__file__).resolve().parent))

from mesa_reference import ReferenceModel  # noqa: E402
from sim import DiffusionModel  # noqa: E402

WARMUP_MONTHS = 24  # measure in 2025, when every family is on the market


def steps_per_second(model, steps: int) -> float:
    """Agent-steps per CPU second over `steps` months of an already built model."""
    start = time.process_time()
    for _ in range(steps):
        model.step()
    return model_size(model) * steps / (time.process_time() - start)


def model_size(model) -> int:
    return len(model.agents) if isinstance(model, ReferenceModel) else len(model.work)


def agent_steps_per_second(n_agents: int, steps: int = 24) -> float:
    model = DiffusionModel(n_agents=n_agents, rng=1)
    for _ in range(WARMUP_MONTHS):
        model.step()
    return steps_per_second(model, steps)


def mesa_reference_steps_per_second(n_agents: int = 10_000, steps: int = 6) -> float:
    model = ReferenceModel(n_agents, rng=1)
    for _ in range(WARMUP_MONTHS):
        model.step()
    return steps_per_second(model, steps)


def baseline_run_seconds(repeats: int = 3) -> float:
    """Median wall time of the default run (5,000 agents, 2023-01 to 2030-12)."""
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        model = DiffusionModel(rng=seed)
        while model.running:
            model.step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


MILLION = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from sim import DiffusionModel
model = DiffusionModel(n_agents=1_000_000, rng=1)
for _ in range(12):
    model.step()
peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
for _ in range({warmup} - 12):
    model.step()
start = time.process_time()
for _ in range(6):
    model.step()
print(json.dumps({{"peak_gib": peak_gib, "rate": 6_000_000 / (time.process_time() - start)}}))
"""


def million_agents() -> dict:
    """Peak resident memory of a separate process that builds 1,000,000 agents and runs 12 months, and its
    throughput in 2025."""
    code = MILLION.format(root=str(ROOT), warmup=WARMUP_MONTHS)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


FIRST_STEP = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from sim import DiffusionModel
model = DiffusionModel(n_agents=1000, rng=0)
model.step()
print(time.perf_counter() - start)
"""


def import_and_first_step_seconds(cache_dir: str | None) -> float:
    """Wall time of a fresh process that imports the model, builds 1,000 agents and runs one month: with the
    kernels' cache as it is (None), or with an empty cache directory (the first run on a machine)."""
    env = dict(os.environ)
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = FIRST_STEP.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    return float(out.splitlines()[-1])


def calibration_generation_seconds() -> float | None:
    """Time of one calibration generation at the default settings: not measured here yet (the calibration's
    owner adds it); returns None so the figure is printed as missing rather than invented."""
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true", help="skip the 1,000,000-agent run")
    parser.add_argument("--skip-cold", action="store_true", help="skip the compile from an empty cache")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    warm = import_and_first_step_seconds(None)  # also compiles the kernels if this checkout never did
    warm = import_and_first_step_seconds(None)
    print(f"import + build 1,000 agents + first month, kernels cached: {warm:.2f} s")
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as empty:
            cold = import_and_first_step_seconds(empty)
        print(f"import + build 1,000 agents + first month, empty kernel cache (compiles): {cold:.1f} s")
    rates = {n: agent_steps_per_second(n) for n in (10_000, 100_000)}
    for n, rate in rates.items():
        print(f"agent-steps per second at {n:,} agents, one core (CPU time): {rate:,.0f}")
    reference = mesa_reference_steps_per_second()
    print(f"idiomatic per-agent Mesa reference at 10,000 agents: {reference:,.0f} agent-steps per second; "
          f"the model at 10,000 agents is {rates[10_000] / reference:.0f}x faster")
    print(f"default baseline run (5,000 agents, 96 months), median of 3: {baseline_run_seconds():.2f} s")
    if not args.skip_million:
        million = million_agents()
        print(f"agent-steps per second at 1,000,000 agents, one core (CPU time): {million['rate']:,.0f}")
        print(f"peak memory with 1,000,000 agents (build + 12 months): {million['peak_gib']:.2f} GiB")
    generation = calibration_generation_seconds()
    print("one calibration generation: " + ("not measured (hook: calibration_generation_seconds)"
                                            if generation is None else f"{generation:.1f} s"))


if __name__ == "__main__":
    main()
