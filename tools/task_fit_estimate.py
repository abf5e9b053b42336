"""Evidence for `task_fit_sd` (docs/ODD.md 7.4, task-specific capability): how far benchmarks disagree on the
ranking of releases, in ECI points.

    .venv/bin/python tools/task_fit_estimate.py [--bootstrap 2000] [--seed 0]

Each other benchmark in the release catalogue (sim/core/data/model-catalogue.csv, shared/data's copy: Artificial
Analysis index v3, LMArena Elo of 2025-08-04 and of 2025-11, MMLU-Pro, GPQA Diamond) is mapped onto the ECI scale by
a least-squares line on the releases rated on both; the residuals are where that benchmark's task ranks a release
above or below its general capability. Their pooled standard deviation (each benchmark's residual sum of squares
over its degrees of freedom, pooled) is the estimate, with a bootstrap interval over releases. Residuals mix
task-specific fit with measurement noise in both scores, so the estimate is an upper end for the persistent task fit
a workload sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# CATALOGUE_CSV: the copy of shared/data/model-catalogue.csv; the benchmarks and lines the imputation uses.
from sim.core.catalogue import BENCHMARKS, CATALOGUE_CSV, MIN_PAIRS, benchmark_line  # noqa: E402


def residuals_by_benchmark(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Residuals (ECI points) of ECI on a line in each benchmark, over the releases rated on both."""
    out = {}
    for name in BENCHMARKS:
        both = table[["eci", name]].dropna()
        if len(both) < MIN_PAIRS:
            continue
        slope, intercept = np.polyfit(both[name], both["eci"], 1)
        out[name] = both["eci"].to_numpy() - (intercept + slope * both[name].to_numpy())
    return out


def pooled_sd(residuals: dict[str, np.ndarray]) -> float:
    """Pooled residual sd: every line fits two coefficients."""
    squares = sum(float(r @ r) for r in residuals.values())
    return float(np.sqrt(squares / sum(len(r) - 2 for r in residuals.values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE_CSV)
    a = parser.parse_args()
    table = pd.read_csv(a.catalogue)
    table = table[table["eci"].notna()].reset_index(drop=True)
    residuals = residuals_by_benchmark(table)
    for name, r in residuals.items():
        both = table[["eci", name]].dropna()
        line = benchmark_line(name, both[name].to_numpy(), both["eci"].to_numpy())
        print(f"{name:20s} releases {line.pairs:3d}  residual sd {line.sd:5.2f} ECI, leave-one-out {line.loo_sd:5.2f}")
    estimate = pooled_sd(residuals)
    rng = np.random.default_rng(a.seed)
    boots = [pooled_sd(residuals_by_benchmark(table.iloc[rng.integers(0, len(table), len(table))]))
             for _ in range(a.bootstrap)]
    lo, hi = np.quantile(boots, [0.05, 0.95])
    rated = table[list(BENCHMARKS)].notna().sum(axis=1)
    print(f"releases with ECI {len(table)}, of them rated on >= 2 other benchmarks {(rated >= 2).sum()}")
    print(f"pooled residual sd {estimate:.2f} ECI points (90% bootstrap over releases {lo:.2f}-{hi:.2f}, "
          f"{a.bootstrap} resamples)")


if __name__ == "__main__":
    main()
