"""Parameter recovery: data the model generates at known parameter sets, fitted back with the calibration's own
fit, and each known value checked against its recovered 90% interval (stage `recovery`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from sim.calibration.abc_smc import AbcResult, fit_stage
from sim.calibration.calibration_config import (NOISE_FLOOR_SEEDS, RECOVERY_DATA_SEED_STRIDE, Budget, Config, Prior,
                                                RunSettings)
from sim.calibration.simulator import DISCREPANCY_CAP, needed_metrics, run_job
from sim.core.calendar import month_label, parse_month
from sim.running.executor import Executor
from sim.statistics import weighted_quantiles
from sim.inputs.targets import CROSSOVER_HORIZON, Target


def synthetic_targets(targets: list[Target], frame: pd.DataFrame) -> list[Target]:
    """The targets with their observed values replaced by one model run's statistics (tolerances kept; relative
    tolerances for log-scale targets). Qualitative targets stay qualitative: the order that run shows, and the
    month of its crossover (or "not by the end of the run": an extrapolated month is not an observation)."""
    out = []
    last = parse_month(frame.index[-1])
    for t in targets:
        s = t.statistic_of(frame)
        if t.statistic == "crossover":
            if s > last:
                out.append(replace(t, start=month_label(last + 1), end=month_label(last + CROSSOVER_HORIZON)))
            else:
                out.append(replace(t, start=month_label(int(s)), end=month_label(int(s))))
        elif t.statistic == "order":
            out.append(replace(t, value=0.0, condition="above" if s >= 0 else "below"))
        elif t.scale == "log":  # keep the relative tolerance
            value = max(float(s), 1e-9)
            out.append(replace(t, value=value, tolerance=value * t.tolerance / t.value, condition="within"))
        else:
            out.append(replace(t, value=float(s), condition="within"))
    return out


NOISE_FLOOR_QUANTILE = 0.9  # the recovery fit keeps epsilon where the truth itself stays accepted 9 times in 10


def floor_discrepancies(targets: list[Target], fit_runs: list[pd.DataFrame],
                        data_runs: list[pd.DataFrame]) -> np.ndarray:
    """Array (data runs, targets): each target's capped discrepancy (tolerance units, as in the fit's distance)
    between data a run generated and the model on the fit's runs, averaged over the fit runs."""
    rows = []
    for frame in data_runs:
        synthetic = synthetic_targets(targets, frame)
        rows.append(np.mean([[min(t.discrepancy(t.statistic_of(f)), DISCREPANCY_CAP) for t in synthetic]
                             for f in fit_runs], axis=0))
    return np.array(rows)


def noise_floor(targets: list[Target], fit_runs: list[pd.DataFrame], data_runs: list[pd.DataFrame]) -> float:
    """The distance between the model at a known set (its `fit_runs`, on the fit's seeds) and data it generated
    itself on other seeds (`data_runs`), at its NOISE_FLOOR_QUANTILE over the data runs: what the model's own
    randomness costs (paths, and the uncertain inputs each run draws). A fit that pushes epsilon below it starts
    to reject the truth itself, so a recovery fit never goes below it."""
    weights = np.array([t.weight for t in targets], float)
    distances = floor_discrepancies(targets, fit_runs, data_runs) @ weights / weights.sum()
    return float(np.quantile(distances, NOISE_FLOOR_QUANTILE))


def noise_floor_split(params: dict[str, Any], targets: list[Target], run: RunSettings, first_seed: int,
                      data_seeds: int, executor: Executor) -> tuple[dict[str, float], pd.DataFrame]:
    """The noise floor at one parameter set (the fit's best), on len(run.seeds) fit seeds and `data_seeds` data
    seeds consecutive from `first_seed` (what epsilon can be compared with: a fit cannot be asked to come closer
    to the figures than the model comes to its own output on other seeds), and where it comes from: for "drawn"
    (every run draws its uncertain inputs, as the fit's runs do) and "central" (the inputs at their central values:
    capabilities of unrated releases, projection assumptions), the floor and each target's mean discrepancy over
    the data seeds.
    The difference is what the input draws cost, the rest the paths' own randomness (agents' draws): two causes
    with different cures (better input data; more agents)."""
    fit_seeds = len(run.seeds)
    seeds = list(range(first_seed, first_seed + fit_seeds + data_seeds))
    floors, table = {}, {"target": [t.id for t in targets]}
    for variant in ("drawn", "central"):
        known = {**params, "draw_assumptions": variant == "drawn"}
        frames = truth_runs(known, run, seeds, needed_metrics(targets), executor)
        floors[variant] = noise_floor(targets, frames[:fit_seeds], frames[fit_seeds:])
        table[variant] = floor_discrepancies(targets, frames[:fit_seeds], frames[fit_seeds:]).mean(axis=0)
    return floors, pd.DataFrame(table)


def truth_runs(truth: dict[str, Any], run: RunSettings, seeds: list[int], metrics: list[str],
               executor: Executor) -> list[pd.DataFrame]:
    """Runs of the known set on each of `seeds`, in order: in the executor's workers, so the parent
    does not run them one by one while the workers idle (each run is seeded by its seed alone, so the result does
    not depend on the number of workers)."""
    return executor.gather(run_job, [(truth, run, seed, metrics) for seed in seeds])


def recovery_table(truth: dict[str, float], result: AbcResult, priors: tuple[Prior, ...]) -> pd.DataFrame:
    """Per parameter: the known value against its recovered median and 90% interval, on the prior's scale."""
    rows = []
    w = result.particles["weight"].to_numpy()
    for p in priors:
        values = np.array([p.on_scale(v) for v in result.particles[p.name]])
        q05, q50, q95 = weighted_quantiles(values, w, [0.05, 0.5, 0.95])
        true = p.on_scale(truth[p.name])
        lo, hi = p.bounds
        rows.append({
            "parameter": p.name, "scale": "log10" if p.log else "linear", "true": true, "median": q50,
            "q05": q05, "q95": q95, "inside90": bool(q05 <= true <= q95), "width_vs_prior": (q95 - q05) / (hi - lo),
        })
    return pd.DataFrame(rows)


def recover(label: str, truths: list[dict[str, Any]], targets: list[Target], config: Config, budget: Budget,
            run: RunSettings, cache: Path, executor: Executor, progress: bool = True,
            on_particle: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parameter recovery over replicates: for each known set, data the model generates there (on a seed no fit
    uses) are fitted back, with epsilon never below that set's noise floor, and each known value is checked
    against its recovered 90% interval. Several replicates, because coverage is a rate: even exact 90% intervals
    miss one value in ten, so one replicate says little; with known sets drawn from the prior, about 90% of the
    values should fall inside (simulation-based calibration). Each replicate's fit draws its own random numbers
    and is cached under a label that names its known set, so a rerun resumes and other known sets are not
    mistaken for it. Returns the per-parameter table (columns `replicate`, `noise_floor`, `epsilon`: where the
    fit stopped) and every replicate's generations."""
    metrics = needed_metrics(targets)
    config = replace(config, history=replace(config.history, waves=config.recovery_history_waves))
    tables, generations = [], []
    for r, truth in enumerate(truths):
        data_seed = config.recovery_data_seed + RECOVERY_DATA_SEED_STRIDE * r
        floor_seeds = list(range(data_seed + 1, data_seed + 1 + NOISE_FLOOR_SEEDS))
        frames = truth_runs(truth, run, [data_seed, *run.seeds, *floor_seeds], metrics, executor)  # one batch
        synthetic = synthetic_targets(targets, frames[0])
        floor = noise_floor(targets, frames[1:1 + len(run.seeds)], frames[1 + len(run.seeds):])
        floored = replace(budget, min_epsilon=max(budget.min_epsilon, floor))
        key = hashlib.sha256(json.dumps([truth, data_seed, run.__dict__], sort_keys=True, default=list).encode())
        result = fit_stage(f"{label}-{r}-{key.hexdigest()[:10]}", synthetic, config, floored, run, cache, executor,
                           progress, on_particle, stream=r + 1)
        table = recovery_table(truth, result, config.priors)
        table.insert(0, "replicate", r)
        table["noise_floor"], table["epsilon"] = floor, float(result.generations.epsilon.iloc[-1])
        table["stopped"] = result.stopped
        tables.append(table)
        generations.append(result.generations.assign(replicate=r))
    return pd.concat(tables, ignore_index=True), pd.concat(generations, ignore_index=True)
