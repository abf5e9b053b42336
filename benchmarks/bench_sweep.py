"""Sweep throughput: runs per minute at the default agent count with 1 and 2 local workers and a local Dask
cluster (2 single-threaded worker processes), and a check that the three tables are identical.

    .venv/bin/python benchmarks/bench_sweep.py [--runs 24] [--agents N] [--workers 1 2] [--dask-workers 2]

Wall-clock time includes starting the worker pool (or connecting to the cluster) and writing the table, as a
user would see it. Figures depend on the machine and on what else runs on it: measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.core.parameters import PARAMETERS  # noqa: E402
from sim.inputs.scenario import SCENARIO_DIR  # noqa: E402
from sim.running.executor import Executor  # noqa: E402
from sim.exploration.sweep import run_sweep  # noqa: E402
from sim.inputs.sweep_spec import load_spec  # noqa: E402

SPEC = """\
name = "bench"
scenario = "{scenario}"
design = "lhs"
samples = {points}
replicates = 2
seed = 11
months = ["2027-12", "2030-12"]
observables = ["or_share_cn", "or_share_open", "ent_share_open_us"]

[fixed]
n_agents = {agents}

[parameters]
trust_cn_north_america = {{ low = 0.0, high = 4.0 }}
cn_lag_months = {{ low = 0, high = 24 }}
price_sensitivity = {{ low = 0.1, high = 2.0, log = true }}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24, help="runs per configuration (even; default 24)")
    parser.add_argument("--agents", type=int, default=PARAMETERS["n_agents"].default)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="local worker counts")
    parser.add_argument("--dask-workers", type=int, default=2, help="Dask worker processes (0: skip Dask)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "bench.toml"
        spec_path.write_text(SPEC.format(scenario=(SCENARIO_DIR / "baseline.toml").as_posix(),
                                         points=max(2, args.runs // 2), agents=args.agents))
        spec = load_spec(spec_path)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"machine: {platform.processor() or platform.machine()}, {cpus} cores available, "
              f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}")
        print(f"{spec.n_runs()} runs of {args.agents} agents, 2023-01 to 2030-12\n")
        print(f"{'executor':<40} {'seconds':>8} {'runs/min':>9}")
        tables = {}
        configs = [(f"local, {w} worker{'s' if w > 1 else ''}", lambda w=w: Executor(w))
                   for w in args.workers]
        cluster = None
        if args.dask_workers:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=args.dask_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            configs.append((f"Dask LocalCluster, {args.dask_workers} workers",
                            lambda: Executor(scheduler=cluster.scheduler_address)))
        try:
            for label, make in configs:
                out = Path(tmp) / label.replace(" ", "_").replace(",", "")
                start = time.perf_counter()
                with make() as executor:
                    result = run_sweep(spec, out, executor, progress=False)
                seconds = time.perf_counter() - start
                tables[label] = pd.read_parquet(result.table)
                print(f"{label:<40} {seconds:8.1f} {60 * spec.n_runs() / seconds:9.1f}")
        finally:
            if cluster is not None:
                cluster.close()
        first = next(iter(tables.values()))
        same = all(t.equals(first) for t in tables.values())
        print(f"\ntables identical across executors: {same}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
