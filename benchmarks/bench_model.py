"""Benchmark of the core model; prints measured figures (no pass/fail: targets are in the README).

Targets (issue 2): >= 2 million agent-steps per second at 100,000 agents on one core; a default baseline run
(5,000 agents, 2023-01 to 2030-12) in under 2 seconds; 1,000,000 agents fit in 2 GB.

    make bench            # or: .venv/bin/python benchmarks/bench_model.py [--skip-million]
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core: no BLAS threads
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from sim import DiffusionModel  # noqa: E402


def agent_steps_per_second(n_agents=100_000, warmup=24, steps=24) -> float:
    """Throughput of the monthly step at scale, measured in 2025 when every family is on the market."""
    model = DiffusionModel(n_agents=n_agents, rng=1)
    for _ in range(warmup):
        model.step()
    start = time.process_time()
    for _ in range(steps):
        model.step()
    return n_agents * steps / (time.process_time() - start)


def baseline_run_seconds(repeats=3) -> float:
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        model = DiffusionModel(rng=seed)
        while model.running:
            model.step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def million_agents_peak_gb() -> float:
    """Peak resident memory of a separate process that builds 1,000,000 agents and runs 12 months."""
    code = "from sim import DiffusionModel\nm = DiffusionModel(n_agents=1_000_000, rng=1)\nfor _ in range(12): m.step()\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true", help="skip the 1,000,000-agent memory check")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"agent-steps per second at 100,000 agents, one core (CPU time): {agent_steps_per_second():,.0f}")
    print(f"default baseline run (5,000 agents, 96 months), median of 3: {baseline_run_seconds():.2f} s")
    if not args.skip_million:
        print(f"peak memory with 1,000,000 agents (build + 12 months): {million_agents_peak_gb():.2f} GiB")


if __name__ == "__main__":
    main()
