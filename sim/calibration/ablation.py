"""Ablations: what each mechanism earns (pattern-oriented modelling, Grimm et al. 2005, Science 310:987).

Each mechanism that was added to reach a figure is switched off (MECHANISMS: a parameter at its neutral value, or
a structural switch whose default leaves the model unchanged), the model is refitted briefly, and its fit and
out-of-sample score are set beside those of the same short refit with every mechanism on:

  1. start: `population` draws of the out-of-sample posterior (the `oos` stage: fitted on the figures ending by
     [out_of_sample] cutoff), with the switched-off parameters dropped from the priors, simulated with the
     mechanism off (fresh seeds): the posterior re-scored without the mechanism;
  2. a short ABC-SMC refit from there on the same in-sample figures ([ablation] budget; sim/calibration/abc_smc.py, run_abc);
  3. `draws` posterior-predictive runs (fresh seeds) of every figure ending after the cutoff, scored with the
     CRPS, the 90% interval score and 90% coverage (sim/calibration/scoring.py), in tolerance units.

The reference ("all on") goes through the same three steps, so every row has the same budget. The short refit
favours the reference: its start is already its posterior, while a switched-off variant starts from a posterior
fitted with the mechanism on. A mechanism whose off row fits and forecasts as well as the reference anyway is not
needed for any figure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from sim.core.calendar import parse_month
from sim.calibration.abc_smc import run_abc
from sim.calibration.predictive import predictive_runs, resample, target_statistics
from sim.calibration.simulator import needed_metrics
from sim.calibration.calibration_config import Config
from sim.running.executor import Executor
from sim.calibration.scoring import score
from sim.inputs.targets import Target

STREAM = 3000  # run_abc stream of variant i: STREAM + i (hindcasts use 1000 + k and 2000 + k)
SEED_OFFSET = 20 * 100_000  # predictive seeds of variant i start at predictive.seed_base + SEED_OFFSET + 1000 i


@dataclass(frozen=True)
class Mechanism:
    name: str
    off: tuple[tuple[str, Any], ...]  # model parameters that switch it off
    drop: tuple[str, ...]  # priors with nothing left to act on once it is off
    why: str  # the figure it was added for


REFERENCE = Mechanism("all on", (), (), "the model as calibrated")
MECHANISMS = (
    Mechanism("headline_gap", (("headline_filter", False),), ("headline_gap",),
              "every release makes headlines, not only those near the frontier (OR2/OR3: Chinese releases noticed)"),
    Mechanism("hf_growth", (("hf_growth", 1.0),), ("hf_growth",),
              "no growth of Hugging Face activity per unit of use (HF7: downloads grow 20x)"),
    Mechanism("quality_weight", (("quality_weight", 0.0),), ("quality_weight",),
              "no preference for the better model beyond need (OR9/OR10: coding on frontier models)"),
    Mechanism("marketplace routing of domestic use", (("marketplace_home_share", 1.0),), (),
              "Chinese and restricted-market marketplace users route all their use (OR15: China's small share)"),
    Mechanism("clustered network", (("network", "complete"),), (),
              "complete mixing instead of the clustered word-of-mouth graph"),
    Mechanism("switching_cost", (("switching_cost", 0.0),), ("switching_cost",),
              "no habit bonus for the family a workload runs on (OR14: retention)"),
    Mechanism("workloads / multi-homing", (("workload_scale", 0.0),), ("switching_cost",),
              "the continuous logit split instead of workloads (ENT4: multi-homing); no habit to act on"),
    Mechanism("price tiers", (("price_tiers", False),), (),
              "one bundle per family at its flagship's price (NY2/OR13: closed tokens on cheap tiers)"),
    Mechanism("origin trust weighed by firms", (("firm_origin_trust", False),), (),
              "only regulated firms weigh a model's origin more than developers (ENT1/ENT2: US enterprise open share)"),
)


def _variant(config: Config, mechanism: Mechanism) -> tuple[Config, Any]:
    """The settings of the refit with `mechanism` off: its priors dropped, its parameters fixed in every run."""
    fit_config = replace(config, priors=tuple(p for p in config.priors if p.name not in mechanism.drop))
    return fit_config, replace(config.run, fixed=tuple(config.run.fixed) + mechanism.off)


def _start(particles: pd.DataFrame, config: Config, n: int, seed) -> np.ndarray:
    """`n` draws of the posterior `particles` as points of the unit cube of `config`'s priors."""
    rows = particles.iloc[resample(particles["weight"].to_numpy(), n, seed)]
    return np.array([[p.to_unit(v) for p, v in zip(config.priors, row)] for row in
                     rows[[p.name for p in config.priors]].itertuples(index=False)], float)


def ablation_stage(targets: list[Target], config: Config, start: pd.DataFrame, cache: Path, executor: Executor,
                   progress: bool = True, on_particle: Callable[[int, int], None] | None = None,
                   mechanisms: tuple[Mechanism, ...] = MECHANISMS) -> dict[str, pd.DataFrame]:
    """Every mechanism off and the reference (module docstring), refitted from the out-of-sample posterior `start`;
    returns per-figure held-out scores (`ablation_scores`) and one row per variant (`ablation_table`)."""
    end = parse_month(config.cutoff)
    in_sample = [t for t in targets if t.fit and parse_month(t.end) <= end]
    held_out = [t for t in targets if parse_month(t.end) > end]
    scores, table = [], []
    for i, mechanism in enumerate((REFERENCE, *mechanisms)):
        fit_config, run = _variant(config, mechanism)
        label = f"ablation-{i}-{mechanism.name.replace(' ', '_').replace('/', '')}"
        initial = _start(start, fit_config, config.ablation.population, [config.seed, STREAM + i])
        fit = run_abc(label, in_sample, fit_config, config.ablation, run, cache, executor, progress, on_particle,
                      stream=STREAM + i, initial=(initial, None))
        _, frames = predictive_runs(f"{label}-predictive", fit.particles, fit_config.priors, config.ablation_draws,
                                    config.seed + STREAM + i, config.predictive_seed_base + SEED_OFFSET + 1000 * i,
                                    run, needed_metrics(targets), cache, executor, progress)
        stats = target_statistics(held_out, frames)
        per_figure = pd.DataFrame([{"target": t.id, "openrouter": t.metric.startswith("or_"),
                                    **score(t, stats[t.id].to_numpy(float))} for t in held_out])
        per_figure.insert(0, "mechanism", mechanism.name)
        scores.append(per_figure)
        openrouter = per_figure[per_figure.openrouter]
        table.append({
            "mechanism": mechanism.name, "switched_off_by": ", ".join(f"{k} = {v}" for k, v in mechanism.off) or "-",
            "why": mechanism.why,
            "epsilon": float(fit.generations.epsilon.iloc[-1]) if len(fit.generations) > 1 else np.nan,
            "median_distance": float(np.median(fit.particles.distance)),
            "best_distance": float(fit.particles.distance.min()),
            "simulations": int(fit.generations.simulations.sum()),
            "held_out": len(held_out), "crps": float(np.nanmean(per_figure.crps_tol)),
            "is90": float(np.nanmean(per_figure.is90_tol)),
            "coverage90": float(per_figure.covered90.mean()), "or_crps": float(np.nanmean(openrouter.crps_tol)),
        })
    return {"ablation_scores": pd.concat(scores, ignore_index=True), "ablation_table": pd.DataFrame(table)}


def markdown(table: pd.DataFrame, cutoff: str) -> list[str]:
    """The table "what each mechanism earns" as report.md lines."""
    reference = table.iloc[0]
    lines = ["### What each mechanism earns (ablations)", "",
             f"Each mechanism switched off and the model refitted briefly from the out-of-sample posterior (figures "
             f"ending by {cutoff}), beside the same short refit with everything on (sim/calibration/ablation.py). Fit: median "
             "distance of the refitted posterior on the in-sample figures (tolerance units, lower is better). "
             f"Forecast: mean CRPS and 90% interval score over the {int(reference.held_out)} figures ending after "
             "the cutoff (tolerance units), OpenRouter ones apart, and 90% coverage. Δ: off minus all on (positive: "
             "the mechanism earns that much).", "",
             "| mechanism | switched off by | fit (median distance) | Δ fit | held-out CRPS | Δ CRPS | OR CRPS | "
             "IS90 | 90% coverage | simulations |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r.mechanism} | {r.switched_off_by} | {r.median_distance:.2f} | "
                     f"{r.median_distance - reference.median_distance:+.2f} | {r.crps:.2f} | "
                     f"{r.crps - reference.crps:+.2f} | {r.or_crps:.2f} | {r.is90:.2f} | {r.coverage90:.2f} | "
                     f"{int(r.simulations)} |")
    idle = [r.mechanism for _, r in table.iloc[1:].iterrows()
            if r.median_distance <= reference.median_distance and r.crps <= reference.crps]
    lines += ["", ("Switched off, these fit and forecast at least as well as the model with everything on, so at "
                   f"this budget they earn nothing: {', '.join(idle)}." if idle else
                   "Every mechanism, switched off, worsens the fit or the forecast."), ""]
    return lines
