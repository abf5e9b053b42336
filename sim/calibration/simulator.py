"""One parameter set of the calibration, simulated: a point of the unit cube (one coordinate per prior) -> each
target's statistic on each calibration seed, and the distance the fits rank sets by.

Shared by ABC-SMC (sim/calibration/abc_smc.py), history matching, the predictive checks and the recovery, so that
every stage runs the model and measures its distance from the figures the same way.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from sim.calibration.calibration_config import Prior, RunSettings, parameter_set
from sim.inputs.targets import Target, with_solved_scales


def needed_metrics(targets: Iterable[Target]) -> list[str]:
    """The model columns the targets read (each once, in order): a run keeps only these."""
    return list(dict.fromkeys(m for t in targets for m in t.metrics))


def run_once(params: dict[str, Any], run: RunSettings, seed: int, metrics: list[str]) -> pd.DataFrame:
    """One model run to the calibration end; only the columns the targets read."""
    from sim.running.runner import run_member

    return run_member({**params, **dict(run.fixed), "n_agents": run.n_agents, "end": run.end}, seed)[metrics]


def run_job(job: tuple) -> pd.DataFrame:
    """Worker: run_once on a (params, run, seed, metrics) tuple, the form the executors map over."""
    return run_once(*job)


class Simulator:
    """A point of the unit cube (one coordinate per prior) -> each target's statistic on each calibration seed.

    Picklable and small, so it ships to local workers or a Dask cluster as is."""

    def __init__(self, priors: tuple[Prior, ...], targets: list[Target], run: RunSettings):
        self.priors, self.targets, self.run = priors, targets, run
        self.metrics = needed_metrics(targets)

    def params(self, u: np.ndarray) -> dict[str, Any]:
        return parameter_set(self.priors, u)

    def seeds_for(self, rng: np.random.Generator) -> tuple[int, ...]:
        """The model seeds of the next simulation: the fixed ones, or fresh ones drawn from the job's generator
        (so they follow from the job's index, not from which worker runs it)."""
        from sim.calibration.history_matching import fresh_seeds

        return tuple(fresh_seeds(rng, len(self.run.seeds))) if self.run.fresh else self.run.seeds

    def __call__(self, u: np.ndarray, seeds: Iterable[int] | None = None) -> np.ndarray:
        """Array (seeds, targets) of statistics, on `seeds` (default: the fixed calibration seeds)."""
        params = self.params(u)
        seeds = seeds or self.run.seeds
        return self.statistics(u, [run_once(params, self.run, seed, self.metrics) for seed in seeds])

    def statistics(self, u: np.ndarray, frames: list[pd.DataFrame]) -> np.ndarray:
        """Array (runs, targets) of statistics of runs made at `u` (tables with at least this simulator's metrics):
        apart from the runs themselves, so that runs made once can serve fits to different figures."""
        params = self.params(u)
        # Observation scales: solved, not sampled (unless a prior is given for one).
        frames = with_solved_scales(self.targets, [frame[self.metrics] for frame in frames], params,
                                    [p.name for p in self.priors])
        return np.array([[t.statistic_of(frame) for t in self.targets] for frame in frames], float)

    def distance(self, stats: np.ndarray) -> float:
        """Mean over the calibration seeds of each seed's distance."""
        return float(np.mean([seed_distance(self.targets, row) for row in stats]))


DISCREPANCY_CAP = 4.0  # tolerance units: beyond this a figure counts as a plain miss in the fit's distance


def seed_distance(targets: list[Target], values: Iterable[float]) -> float:
    """Weighted mean absolute discrepancy of one seed's statistics (aligned with `targets`), in tolerance units,
    each capped at DISCREPANCY_CAP. Absolute rather than squared, and capped: a few figures the model cannot reach
    (a crossover extrapolated years away, a count off by an order of magnitude) would otherwise dominate the
    distance and the fit would spend its budget on them instead of the figures it can match."""
    total = sum(t.weight * min(t.discrepancy(v), DISCREPANCY_CAP) for t, v in zip(targets, values))
    return total / sum(t.weight for t in targets)


def reflect(u: np.ndarray) -> np.ndarray:
    """Fold a point back into the unit cube (reflection at each face): the random walks of ABC's moves and of
    history matching's NROY sampling stay symmetric, so the Metropolis ratio stays 1 inside the cube."""
    u = np.mod(u, 2.0)
    return np.where(u > 1.0, 2.0 - u, u)
