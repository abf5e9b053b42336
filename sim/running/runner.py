"""Running ensembles: one scenario, many members (seeds), in parallel, reproducibly.

Member k of any scenario runs with seed `base_seed + k`, so members are paired across scenarios (common random
numbers: the same population, network and lab draws) and results do not depend on the number of workers.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.running.executor import Executor
from sim.core.model import DiffusionModel
from sim.core.observe import metric_names
from sim.statistics import BAND_QUANTILES, quantile_frame

def run_member(kwargs: dict[str, Any], seed: int) -> pd.DataFrame:
    """Run one model to its end month; return its DataCollector table indexed by date."""
    model = DiffusionModel(rng=seed, **kwargs)
    while model.running:
        model.step()
    return model.datacollector.get_model_vars_dataframe().set_index("date")


def run_job(job: tuple[dict[str, Any], int]) -> pd.DataFrame:
    """run_member for one (kwargs, seed) job: the form executors map over."""
    return run_member(*job)


def ensemble(
    kwargs: dict[str, Any], seeds: list[int], executor: Executor | None = None, desc: str = "runs",
    progress: bool = True, parameter_sets: Callable[[int], dict[str, Any]] | None = None,
) -> list[pd.DataFrame]:
    """Tables of all members, in seed order, run by `executor` (default: in this process). `parameter_sets(k)`
    may supply member k's own parameters (e.g. a draw from the calibration posterior); the scenario's own
    settings win over them."""
    jobs = []
    for k, seed in enumerate(seeds):
        member = dict(parameter_sets(k)) if parameter_sets else {}
        member.update(kwargs)
        jobs.append((member, seed))
    frames: list[pd.DataFrame | None] = [None] * len(jobs)
    with tqdm(total=len(jobs), desc=desc, unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for i, frame in (executor or Executor(1)).unordered(run_job, jobs):
            frames[i] = frame
            bar.update()
    return frames  # type: ignore[return-value]


def quantile_table(frames: list[pd.DataFrame], quantiles: dict[str, float] = BAND_QUANTILES) -> pd.DataFrame:
    """Tidy table: one row per date and metric with the mean and quantiles over members (NaNs ignored)."""
    metrics = [m for m in metric_names() if m in frames[0].columns]
    stack = np.stack([f[metrics].to_numpy(dtype=float) for f in frames])  # member x date x metric
    return quantile_frame(stack, frames[0].index.to_list(), metrics, quantiles)
