"""Running ensembles: one scenario, many members (seeds), in parallel, reproducibly.

Member k of any scenario runs with seed `base_seed + k`, so members are paired across scenarios (common random
numbers: the same population, network and lab draws) and results do not depend on the number of workers.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.running.executor import Executor
from sim.core.model import DiffusionModel
from sim.core.observe import metric_names
from sim.core.shocks import Shock
from sim.statistics import BAND_QUANTILES, quantile_frame


def _finish(model: DiffusionModel) -> pd.DataFrame:
    """Step a model to its end month; return its DataCollector table indexed by date."""
    while model.running:
        model.step()
    return model.datacollector.get_model_vars_dataframe().set_index("date")


def run_member(kwargs: dict[str, Any], seed: int) -> pd.DataFrame:
    """Run one model to its end month; return its DataCollector table indexed by date."""
    return _finish(DiffusionModel(rng=seed, **kwargs))


def in_effect(shocks: tuple[Shock, ...], month: int) -> tuple[Shock, ...]:
    """The shocks that act in `month`, in order: the model reads shocks only through their progress in the
    current month, zero before their date."""
    return tuple(shock for shock in shocks if shock.progress(month) > 0)


def branch_month(shocks: tuple[Shock, ...], trunk_shocks: tuple[Shock, ...], start: int, end: int) -> int | None:
    """The first month in which a run with `shocks` may differ from one with `trunk_shocks` and otherwise the same
    settings and seed: before it both have the same shocks in effect, so they take identical steps, and the run
    can start from a copy of the trunk's model at the month before. None when it cannot: the shocks differ from
    the first month `start` (nothing to share), or never up to `end` (nothing to branch)."""
    month = next((m for m in range(start, end + 1) if in_effect(shocks, m) != in_effect(trunk_shocks, m)), None)
    return None if month is None or month == start else month


def run_branched(kwargs: dict[str, Any], seed: int, keep_trunk: bool,
                 branches: list[tuple[tuple[Shock, ...], int]]) -> tuple[pd.DataFrame | None, list[pd.DataFrame]]:
    """One trunk run (kwargs, seed) and runs that branch from it: branch (shocks, month) continues a copy of the
    trunk's model taken at the month before `month` (runner.branch_month) with `shocks` instead of the trunk's, so
    the months they share are simulated once. Returns the trunk's table (run to its end only when `keep_trunk`;
    else None) and the branches' tables, in the order given; each equals the table run_member gives."""
    model = DiffusionModel(rng=seed, **kwargs)
    tables: list[pd.DataFrame | None] = [None] * len(branches)
    for i in sorted(range(len(branches)), key=lambda i: branches[i][1]):
        shocks, month = branches[i]
        if not model.start_month < month <= model.end_month:
            raise ValueError(f"branch month {month} outside the trunk's months after its first")
        while model.month < month - 1:
            model.step()
        branch = copy.deepcopy(model)
        branch.shocks = tuple(shocks)
        tables[i] = _finish(branch)
    return (_finish(model) if keep_trunk else None), tables  # type: ignore[return-value]


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
