"""Posterior-predictive checks: posterior draws run on fresh seeds, each target's statistic per run, the bands
over time the report draws, and per target whether the observation falls inside the predictive intervals.

Used by the fit's check (stage `predictive`), the out-of-sample test, the hindcasts and the ablations alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.calibration.calibration_config import Prior, RunSettings, prior_draws
from sim.calibration.simulator import needed_metrics, run_job, seed_distance
from sim.core.calendar import parse_month
from sim.running.executor import Executor
from sim.running.store import atomic_write
from sim.inputs.targets import Target, with_solved_scales


def resample(weights: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """Indices of `draws` weighted draws (systematic resampling: low variance, deterministic given the seed)."""
    w = np.asarray(weights, float) / np.sum(weights)
    u = (np.random.default_rng(seed).random() + np.arange(draws)) / draws
    return np.minimum(np.searchsorted(np.cumsum(w), u), len(w) - 1)


def prior_particles(priors: tuple[Prior, ...], draws: int, seed: int) -> pd.DataFrame:
    """`draws` parameter sets drawn uniformly from the priors, equally weighted: the prior predictive's particles,
    against which a target counts as informative (issue 18: fewer than half of prior runs hit it)."""
    return pd.DataFrame(prior_draws(priors, draws, [seed, PRIOR_STREAM])).assign(weight=1.0)


PRIOR_STREAM = 11  # seed sequence (seed, PRIOR_STREAM) of the prior-predictive draws


def draw_jobs(particles: pd.DataFrame, priors: tuple[Prior, ...], index: np.ndarray, seed_base: int,
              run: RunSettings, metrics: list[str]) -> list[tuple]:
    """One run_job tuple per drawn row `index[j]`, on seed seed_base + j."""
    names = [p.name for p in priors]
    return [({n: particles.iloc[i][n] for n in names}, run, seed_base + j, metrics) for j, i in enumerate(index)]


def predictive_runs(
    label: str, particles: pd.DataFrame, priors: tuple[Prior, ...], draws: int, seed: int, seed_base: int,
    run: RunSettings, metrics: list[str], cache: Path, executor: Executor, progress: bool = True,
) -> tuple[np.ndarray, list[pd.DataFrame]]:
    """Run `draws` posterior draws once each with fresh seeds; cached in chunks so an interruption loses little."""
    index = resample(particles["weight"].to_numpy(), draws, seed)
    jobs = draw_jobs(particles, priors, index, seed_base, run, metrics)
    folder = cache / f"{label}-runs"
    folder.mkdir(parents=True, exist_ok=True)
    chunk = 50
    frames: list[pd.DataFrame] = []
    bar = tqdm(total=len(jobs), desc=f"{label} runs", unit="run", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(jobs), chunk):
        path = folder / f"chunk-{start // chunk:04d}.parquet"
        part = jobs[start:start + chunk]
        if path.is_file():
            stacked = pd.read_parquet(path)
            frames += [g.drop(columns="draw").set_index("date") for _, g in stacked.groupby("draw", sort=True)]
            bar.update(len(part))
            continue
        got = executor.gather(run_job, part, bar)
        stacked = pd.concat([f.assign(draw=start + j).reset_index() for j, f in enumerate(got)])
        atomic_write(path, stacked.to_parquet)
        frames += got
    bar.close()
    return index, frames


def best_candidates(particles: pd.DataFrame, priors: tuple[Prior, ...], fitted: list[Target], candidates: int,
                    seeds: int, seed_base: int, run: RunSettings, executor: Executor) -> pd.DataFrame:
    """The `candidates` accepted sets with the smallest fit distance, each run again on `seeds` fresh seeds.

    A set's fit distance comes from its own seed, so the smallest of thousands picks a lucky path as much as a good
    set; the mean over fresh seeds does not (best_row chooses on it)."""
    rows = np.argsort(particles["distance"].to_numpy(), kind="stable")[:candidates]
    index = np.repeat(rows, seeds)
    jobs = draw_jobs(particles, priors, index, seed_base, run, needed_metrics(fitted))
    frames = solved_per_draw(fitted, priors, particles, index, executor.gather(run_job, jobs))
    stats = target_statistics(fitted, frames).to_numpy(float)
    distance = pd.Series([seed_distance(fitted, row) for row in stats]).groupby(index).agg(["mean", "std"])
    return pd.DataFrame({"row": rows, "fit_distance": particles["distance"].to_numpy()[rows],
                         "fresh_distance": distance.loc[rows, "mean"].to_numpy(),
                         "fresh_distance_sd": distance.loc[rows, "std"].to_numpy(), "fresh_seeds": seeds})


def best_row(particles: pd.DataFrame, candidates: pd.DataFrame | None) -> int:
    """Position of the calibration's best set: the candidate with the smallest mean distance on fresh seeds, or
    (no candidates: a report from before they existed) the set with the smallest fit distance."""
    if candidates is None or candidates.empty:
        return int(np.argmin(particles["distance"].to_numpy()))
    return int(candidates.loc[candidates["fresh_distance"].idxmin(), "row"])


def solved_per_draw(targets: list[Target], priors: tuple[Prior, ...], particles: pd.DataFrame, index: np.ndarray,
                    frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Predictive runs with each draw's observation scales solved on its own run against the fitted targets
    (the scales are not particles' coordinates: they are solved, sim/inputs/targets.py)."""
    sampled = [p.name for p in priors]
    return [with_solved_scales(targets, [frame], particles.iloc[i].to_dict(), sampled)[0]
            for i, frame in zip(index, frames)]


def target_series(target: Target, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The monthly series a target is read from, for drawing bands: the metric itself, a monthly ratio, or every
    series in a crossover or ordering."""
    if target.statistic == "ratio_mean":
        return {"ratio": frame[target.metric] / frame[list(target.denominator)].sum(axis=1)}
    if target.statistic == "ratio_increase":
        num = frame[target.metric].diff()
        den = frame[list(target.denominator)].sum(axis=1).diff()
        return {"monthly ratio": num / den.where(den > 0)}
    if target.statistic in ("crossover", "order"):
        return {m: frame[m] for m in target.metrics}
    return {target.metric: frame[target.metric]}


BAND_QUANTILES = {"q05": 0.05, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q95": 0.95}


def bands(label: str, targets: list[Target], frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Quantiles over draws of every target's series, by month (tidy: stage, target, series, date, q..)."""
    import warnings

    out = []
    dates = frames[0].index
    for t in targets:
        per_draw = [target_series(t, f) for f in frames]
        for name in per_draw[0]:
            stack = np.stack([d[name].to_numpy(float) for d in per_draw])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                qs = {k: np.nanquantile(stack, q, axis=0) for k, q in BAND_QUANTILES.items()}
            out.append(pd.DataFrame({"stage": label, "target": t.id, "series": name, "date": dates, **qs}))
    return pd.concat(out, ignore_index=True)


def target_statistics(targets: list[Target], frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per run, one column per target statistic."""
    return pd.DataFrame([{t.id: t.statistic_of(f) for t in targets} for f in frames])


def summarise(targets: list[Target], stats: pd.DataFrame) -> pd.DataFrame:
    """Per target: observed, predictive median and 50%/90% intervals, whether the median is a hit, whether the
    observation falls inside each interval, and the share of runs that hit."""
    import warnings

    rows = []
    for t in targets:
        values = stats[t.id].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = {k: float(np.nanquantile(values, p)) for k, p in BAND_QUANTILES.items()}
        observed = _observed_point(t)
        rows.append({
            "target": t.id, "fit": t.fit, **q,
            "median_hit": t.hit(q["q50"]),
            "hit_rate": float(np.mean([t.hit(v) for v in values])),
            "in50": _covers(t, q["q25"], q["q75"], observed),
            "in90": _covers(t, q["q05"], q["q95"], observed),
            "median_discrepancy": t.discrepancy(q["q50"]),
        })
    return pd.DataFrame(rows)


def _observed_point(t: Target) -> tuple[float, float]:
    """The observed figure as an interval: the value itself, or the half-line / window of a qualitative one."""
    if t.statistic == "crossover":
        return float(parse_month(t.start)), float(parse_month(t.end))
    if t.condition == "above":
        return t.value, math.inf
    if t.condition == "below":
        return -math.inf, t.value
    return t.value, t.value


def _covers(t: Target, lo: float, hi: float, observed: tuple[float, float]) -> bool:
    """Whether a predictive interval [lo, hi] overlaps the observed value (or the observed region)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False
    return lo <= observed[1] and hi >= observed[0]
