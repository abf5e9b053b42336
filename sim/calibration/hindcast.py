"""Rolling-origin hindcasts (Tashman 2000, IJF 16:437): at each cutoff the model knows only the past.

For each cutoff in calibration/config.toml [hindcast]:
  1. fit (run_abc) on the fitted targets whose window ends by the cutoff, with every run's labs following the
     release catalogue only up to the cutoff (`catalogue_cutoff`) and releasing by their own stochastic process
     after it; the closed frontier's growth after the cutoff is the trend fitted on the releases known by then;
  2. predict every target ending after the cutoff from posterior draws, each run once with a fresh seed; scored
     as they are ("odsim") and with the figure error the baselines assume added ("odsim + figure error":
     sim/calibration/scoring.py, figure_draws), so that neither comparison favours one side by its error model;
  3. fit the baselines (sim/calibration/baselines.py: logistic, Bass, generalized Bass per share series) on the same in-sample
     figures and predict the held-out figures they can express; fit the aggregate logit twin (sim/calibration/twin.py: the
     model's utility and catalogue, no network, no heterogeneity) the same way as the model, with the same
     catalogue cutoff, and predict every held-out figure with the baselines' figure error added;
  4. score every forecast with the CRPS, the 90% interval score and 90% coverage (sim/calibration/scoring.py), in tolerance
     units, per figure (`hindcast_scores`) and as means per cutoff and forecaster (`hindcast_table`).

Fits and predictive runs are cached like the calibration's own stages (cache/hindcast-<cutoff>/ ...), so an
interrupted hindcast resumes. Known limits: capabilities of releases before the cutoff are today's benchmark
values (no vintage of the benchmarks is kept); the family list is today's, but a family with no release by the
cutoff never releases; prior ranges and the model's structure were chosen knowing all the figures.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from sim.calibration.baselines import curve_families, curve_targets, fit_baselines
from sim.core.calendar import parse_month
from sim.calibration.abc_smc import run_abc
from sim.calibration.predictive import predictive_runs, target_statistics
from sim.calibration.simulator import needed_metrics
from sim.running.executor import Executor
from sim.calibration.calibration_config import Config, RunSettings
from sim.core.catalogue import frontier_trend
from sim.core.parameters import PARAMETERS
from sim.calibration.scoring import figure_draws, score
from sim.inputs.targets import Target
from sim.calibration.twin import TWIN, twin_config, twin_run

MODEL = "odsim"
MODEL_WITH_NOISE = "odsim + figure error"  # the model's runs plus the error the baselines assume (figure_draws)
NOISE_STREAM = 7  # seeds the model's figure errors apart from the baselines'
STREAM = 1000  # run_abc stream of the fit at cutoff k: STREAM + k (the recovery replicates use 1, 2, ...)
TWIN_STREAM = 2000  # ... and of the aggregate logit twin's fit: TWIN_STREAM + k
SEED_STRIDE = 100_000  # predictive seeds of cutoff k start at predictive.seed_base + (k + 2) * SEED_STRIDE
#                        (the out-of-sample stage uses + 1 * SEED_STRIDE)


def openrouter(t: Target) -> bool:
    return t.metric.startswith("or_")


def split(targets: list[Target], cutoff: str) -> tuple[list[Target], list[Target]]:
    """(fitted targets whose window ends by the cutoff, every target ending after it)."""
    end = parse_month(cutoff)
    return ([t for t in targets if t.fit and parse_month(t.end) <= end],
            [t for t in targets if parse_month(t.end) > end])


def hindcast_run(run: RunSettings, cutoff: str) -> RunSettings:
    """The calibration runs with the catalogue cut at `cutoff` and the frontier growing at the trend known then."""
    growth = PARAMETERS["frontier_growth"]
    rate = min(max(frontier_trend(cutoff).eci_per_year, growth.low), growth.high)
    return replace(run, fixed=(("catalogue_cutoff", cutoff), ("frontier_growth", rate)))


def hindcast_cutoff(k: int, cutoff: str, targets: list[Target], config: Config, cache: Path, executor: Executor,
                    progress: bool = True, on_particle: Callable[[int, int], None] | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of the model and the baselines on the held-out figures at one cutoff (one row per forecaster and
    held-out figure), and the fit's generations."""
    in_sample, held_out = split(targets, cutoff)
    run = hindcast_run(config.run, cutoff)

    def forecast(label, fit_config, budget, fit_run, stream, seed_offset):
        """Fit `fit_config`'s priors on the in-sample figures with `fit_run`'s runs; statistics of the held-out
        figures from the posterior's predictive runs (fresh seeds)."""
        fit = run_abc(label, in_sample, fit_config, budget, fit_run, cache, executor, progress, on_particle,
                      stream=stream)
        _, frames = predictive_runs(f"{label}-predictive", fit.particles, fit_config.priors, config.hindcast_draws,
                                    config.seed + stream, config.predictive_seed_base + seed_offset, fit_run,
                                    needed_metrics(targets), cache, executor, progress)
        return fit, target_statistics(held_out, frames)

    fit, stats = forecast(f"hindcast-{cutoff}", config, config.hindcast, run, STREAM + k, (k + 2) * SEED_STRIDE)
    _, twin_stats = forecast(f"hindcast-{cutoff}-twin", twin_config(config), config.twin or config.hindcast,
                             twin_run(run), TWIN_STREAM + k, (k + 2) * SEED_STRIDE + SEED_STRIDE // 2)
    rows = []
    for name, noisy, forecaster_stats in ((MODEL, False, stats), (MODEL_WITH_NOISE, True, stats),
                                          (TWIN, True, twin_stats)):
        for j, t in enumerate(held_out):
            draws = forecaster_stats[t.id].to_numpy(float)
            if noisy:
                draws = figure_draws(t, draws, [config.seed, STREAM + k, NOISE_STREAM, j]
                                     + ([TWIN_STREAM] if name == TWIN else []))
            rows.append({"forecaster": name, "target": t.id, "forecast": "yes", **score(t, draws)})
    fits = fit_baselines(in_sample, curve_families(config.baseline_bounds), config.run.end, cutoff,
                         config.baseline_samples, config.baseline_keep, [config.seed, STREAM + k])
    expressible = curve_targets(held_out)
    for (family, series), baseline in fits.items():
        for j, t in enumerate(t for t in expressible if t.metric == series):
            if baseline is None:
                rows.append({"forecaster": family, "target": t.id,
                             "forecast": f"no: no in-sample figure of {series}"})
            else:
                rows.append({"forecaster": family, "target": t.id, "forecast": "yes",
                             **score(t, baseline.predictive(t, [config.seed, STREAM + k, j]))})
    by_id = {t.id: t for t in targets}
    scores = pd.DataFrame(rows)
    scores.insert(0, "cutoff", cutoff)
    scores["openrouter"] = [openrouter(by_id[i]) for i in scores.target]
    fitted_on = dict.fromkeys((MODEL, MODEL_WITH_NOISE, TWIN), ",".join(t.id for t in in_sample))
    for (family, _), baseline in fits.items():
        if baseline is not None:
            fitted_on[family] = ",".join(filter(None, [fitted_on.get(family, ""), *baseline.fitted_on]))
    scores["fitted_on"] = [fitted_on.get(f, "(none)") for f in scores.forecaster]
    scores["held_out"] = len(held_out)
    return scores, fit.generations.assign(cutoff=cutoff)


def summary_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Means per cutoff and forecaster, in tolerance units: over the held-out OpenRouter figures that every
    forecaster forecasts at that cutoff (`or_*`: the fair comparison), over all held-out figures every forecaster
    forecasts (`common_*`), and over every held-out figure the forecaster forecasts (`all_*`, with 90% coverage).
    `no_forecast` lists figures a baseline could express but had no in-sample figure of its series for."""
    rows = []
    for cutoff, at in scores.groupby("cutoff", sort=True):
        forecast = at[at.forecast == "yes"]
        n_forecasters = at.forecaster.nunique()
        per_target = forecast.groupby("target").forecaster.nunique()
        common = set(per_target[per_target == n_forecasters].index)
        for name, mine in at.groupby("forecaster", sort=False):
            done = mine[mine.forecast == "yes"]
            shared = done[done.target.isin(common)]
            shared_or = shared[shared.openrouter]
            rows.append({
                "cutoff": cutoff, "forecaster": name, "fitted_on": mine.fitted_on.iloc[0],
                "held_out": int(mine.held_out.iloc[0]),
                "or_n": len(shared_or), "or_crps": _mean(shared_or.crps_tol), "or_is90": _mean(shared_or.is90_tol),
                "common_n": len(shared), "common_crps": _mean(shared.crps_tol),
                "common_is90": _mean(shared.is90_tol),
                "all_n": len(done), "all_crps": _mean(done.crps_tol), "all_is90": _mean(done.is90_tol),
                "coverage90": _mean(done.covered90.astype(float)),
                "no_forecast": ",".join(mine[mine.forecast != "yes"].target),
            })
    return pd.DataFrame(rows)


def _mean(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def hindcast_stage(targets: list[Target], config: Config, cache: Path, executor: Executor, progress: bool = True,
                   on_particle: Callable[[int, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Every cutoff of config.hindcast_cutoffs; returns the tables calibrate() writes to data/."""
    scores, generations = [], []
    for k, cutoff in enumerate(config.hindcast_cutoffs):
        s, g = hindcast_cutoff(k, cutoff, targets, config, cache, executor, progress, on_particle)
        scores.append(s)
        generations.append(g)
    scores = pd.concat(scores, ignore_index=True)
    return {"hindcast_scores": scores, "hindcast_table": summary_table(scores),
            "hindcast_generations": pd.concat(generations, ignore_index=True)}


def _text(value, empty: str) -> str:
    """A text cell read back from CSV (an empty cell comes back as NaN)."""
    return value if isinstance(value, str) and value else empty


def markdown(table: pd.DataFrame) -> list[str]:
    """The hindcast table as report.md lines (one block per cutoff)."""
    lines = ["### Rolling-origin hindcasts", "",
             "At each cutoff every forecaster knows only the figures ending by then (the model also only the "
             "releases up to then); scores are means in tolerance units over held-out figures (lower is better): "
             "CRPS, 90% interval score (IS), and the share of figures inside the 90% interval. OR: the held-out "
             "OpenRouter figures every forecaster predicts; all: every held-out figure this forecaster predicts.",
             ""]
    for cutoff, at in table.groupby("cutoff", sort=True):
        lines += [f"**Cutoff {cutoff}** ({int(at.held_out.iloc[0])} held-out figures)", "",
                  "| forecaster | fitted on | OR n | OR CRPS | OR IS | all n | all CRPS | all IS | 90% coverage | "
                  "no forecast |", "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in at.iterrows():
            lines.append(f"| {r.forecaster} | {_text(r.fitted_on, '(none)')} | {r.or_n} | {r.or_crps:.2f} | "
                         f"{r.or_is90:.2f} | {r.all_n} | {r.all_crps:.2f} | {r.all_is90:.2f} | "
                         f"{r.coverage90:.2f} | {_text(r.no_forecast, '-')} |")
        lines += ["", twin_verdict(at), ""]
    return lines


def twin_verdict(at: pd.DataFrame) -> str:
    """Whether odsim beats its aggregate logit twin at one cutoff (mean CRPS over every held-out figure, both with
    the figure error added, so both forecasts carry the same error model), said plainly."""
    rows = at.set_index("forecaster")
    if TWIN not in rows.index or MODEL_WITH_NOISE not in rows.index:
        return ""
    model, twin = rows.loc[MODEL_WITH_NOISE, "all_crps"], rows.loc[TWIN, "all_crps"]
    if model < twin:
        return (f"The agent-based model beats its aggregate logit twin here (mean CRPS {model:.2f} against "
                f"{twin:.2f} over the held-out figures): the network and heterogeneity earn "
                f"{1 - model / twin:.0%} of the twin's error.")
    return (f"**The agent-based model does not beat its aggregate logit twin here** (mean CRPS {model:.2f} against "
            f"{twin:.2f} over the held-out figures): at this cutoff the network and the agents' heterogeneity do "
            "not earn their keep.")
