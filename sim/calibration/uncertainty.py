"""Where a projection's uncertainty comes from, and which next published figure would shrink it most.

Two analyses of the baseline's 2030 headline outputs under the calibration posterior (issue 19, part 5):

* **Variance decomposition** (grouped Sobol indices, SALib). The factors are groups of parameters, each group
  drawn as a block from the posterior (a group keeps its posterior row: correlations inside a group are kept,
  those between groups are not, which is what makes the indices defined), the projection assumptions in small
  named groups, each drawn from its documented ranges, and the model's own randomness (the seed). First-order
  index S1: share of the output's variance the group explains alone; total index ST: including its interactions.
  Saltelli's design costs N x (groups + 2) runs, so the fitted groups that explained ~0 of the headline outputs
  (ST <= 0.01 each in the calibration of 2026-12-02 00:50) share one group, which pays for naming the assumptions.
* **Value of information.** For each candidate figure (an observable at a future month, observed with a named
  error), the expected 90%-interval width of the output once the figure is known: regress the output on the
  noisy figure over independent posterior runs (cross-validated, so the fit does not flatter itself), and
  scale the width by the square root of the residual share of variance (a normal approximation).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.running.store import atomic_write

# Fitted parameter groups, by name or prefix (a rule ending in "_"); a fitted parameter matching none falls in
# OTHER_FITTED: awareness, switching, marketplace routing, Hugging Face observation and anything added later, which
# explained ST <= 0.01 each of the 2030 headline outputs when they were groups of their own.
GROUP_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("price and capability", ("price_sensitivity", "capability_weight", "quality_weight")),
    ("licence and openness", ("licence_weight", "openness_weight")),
    ("trust by origin", ("trust_",)),
    ("ecosystem and peers", ("ecosystem_weight", "peer_weight")),
)
OTHER_FITTED = "other fitted parameters"
# Projection assumptions (a `drawn` range in sim/core/parameters.py), grouped by what they move: the price declines
# (the relative price of open and closed families), the Chinese labs' lag (the Chinese share's main lever), the
# other labs' lags, and the frontier's pace and spread. An assumption in none gets a group of its own, so a new one
# is reported, not hidden.
ASSUMPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("price declines (assumption)", ("price_decline_closed", "price_decline_open")),
    ("Chinese lag (assumption)", ("cn_lag_months",)),
    ("other labs' lags (assumption)", ("frontier_lag_months", "us_open_lag_months", "eu_lag_months")),
    ("frontier pace and spread (assumption)", ("frontier_growth", "capability_noise", "release_pace")),
)
# Reach only Hugging Face observables (docs/ODD.md 7.8), not the headline outputs: not factors of the design (each
# run draws them itself on the seed's stream), which saves N runs per group.
OBSERVATION_ONLY_ASSUMPTIONS = ("hf_background_share", "hf_background_cn_us")
RANDOMNESS = "model's own randomness (seed)"
SEED_SPACE = 2**31 - 1


def group_of(name: str) -> str:
    for group, rules in GROUP_RULES:
        if any(name == rule or (rule.endswith("_") and name.startswith(rule)) for rule in rules):
            return group
    return OTHER_FITTED


def assumption_group_of(name: str) -> str:
    return next((group for group, names in ASSUMPTION_GROUPS if name in names), f"{name} (assumption)")


@dataclass(frozen=True)
class Factors:
    """The unit-cube factors of the decomposition and how a row of them becomes a run: each parameter group is
    one factor picking a posterior row, each assumption one factor across its range, and one factor the seed."""

    posterior: pd.DataFrame  # equal-weight parameter sets (one row each)
    assumptions: dict[str, tuple[float, float]]
    seed_base: int

    @cached_property
    def fitted_groups(self) -> list[str]:
        return list(dict.fromkeys(group_of(c) for c in self.posterior.columns))

    @property
    def groups(self) -> list[str]:
        return self.fitted_groups + [assumption_group_of(n) for n in self.assumptions] + [RANDOMNESS]

    def members(self) -> dict[str, list[str]]:
        """Each group's parameters, for the report."""
        members: dict[str, list[str]] = {}
        for name in self.posterior.columns:
            members.setdefault(group_of(name), []).append(name)
        for name in self.assumptions:
            members.setdefault(assumption_group_of(name), []).append(name)
        return {**members, RANDOMNESS: ["seed"]}

    @property
    def names(self) -> list[str]:
        return self.fitted_groups + list(self.assumptions) + ["seed"]

    def problem(self) -> dict[str, Any]:
        names = self.names
        return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names), "groups": self.groups}

    @cached_property
    def _columns(self) -> list[list[str]]:
        return [[c for c in self.posterior.columns if group_of(c) == g] for g in self.fitted_groups]

    def run_settings(self, row: np.ndarray) -> tuple[dict[str, Any], int]:
        """(parameter set, seed) for one row of the design."""
        params: dict[str, Any] = {}
        for u, columns in zip(row, self._columns):
            index = min(int(u * len(self.posterior)), len(self.posterior) - 1)
            params.update({c: self.posterior[c].iat[index] for c in columns})
        for u, (name, (low, high)) in zip(row[len(self.fitted_groups):], self.assumptions.items()):
            params[name] = low + u * (high - low)
        seed = self.seed_base + min(int(row[-1] * SEED_SPACE), SEED_SPACE - 1)
        return params, seed


def equal_weight_sample(particles: pd.DataFrame, names: list[str], size: int, seed: int) -> pd.DataFrame:
    """A weighted posterior as `size` equally weighted rows (a fixed resample)."""
    weights = (particles["weight"] / particles["weight"].sum()).to_numpy()
    rows = np.random.default_rng(seed).choice(len(particles), size=size, p=weights)
    return particles.iloc[rows][names].reset_index(drop=True)


def design(factors: Factors, n: int, seed: int) -> np.ndarray:
    """Saltelli's design for first-order and total indices: n * (groups + 2) rows (n a power of 2)."""
    from SALib.sample import sobol

    return sobol.sample(factors.problem(), n, calc_second_order=False, seed=seed)


def sobol_indices(factors: Factors, outputs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Grouped S1 and ST of each output column (rows in design order), with 95% confidence half-widths."""
    from SALib.analyze import sobol

    groups = list(dict.fromkeys(factors.groups))  # SALib's order: first appearance
    members = factors.members()
    records = []
    for output in outputs.columns:
        values = outputs[output].to_numpy(float)
        res = sobol.analyze(factors.problem(), values, calc_second_order=False, conf_level=0.95, seed=seed)
        for j, group in enumerate(groups):
            records.append({"output": output, "group": group, "S1": res["S1"][j], "S1_conf": res["S1_conf"][j],
                            "ST": res["ST"][j], "ST_conf": res["ST_conf"][j], "variance": float(np.var(values)),
                            "members": ", ".join(members[group])})
    return pd.DataFrame(records)


def independent_rows(n: int, n_groups: int) -> np.ndarray:
    """Indices of the design's rows that are independent draws: its A and B matrices (the first and last row
    of each block of n_groups + 2 in SALib's layout)."""
    block = n_groups + 2
    starts = np.arange(n) * block
    return np.concatenate([starts, starts + block - 1])


def value_of_information(outputs: pd.DataFrame, candidates: pd.DataFrame, errors: dict[str, float],
                         seed: int, folds: int = 5) -> pd.DataFrame:
    """Expected 90% interval width of each output once each candidate figure is observed with its error (sd).

    `outputs` and `candidates` hold the same independent runs in rows. The output is regressed on the noisy
    figure with a cubic polynomial (cross-validated predictions); the remaining variance share scales the
    width under a normal approximation. A figure that says nothing leaves the width (factor about 1)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    rng = np.random.default_rng(seed)
    records = []
    for output in outputs.columns:
        y = outputs[output].to_numpy(float)
        width = float(np.quantile(y, 0.95) - np.quantile(y, 0.05))
        for figure in candidates.columns:
            x = candidates[figure].to_numpy(float) + rng.normal(0.0, errors[figure], len(y))
            ok = np.isfinite(x) & np.isfinite(y)
            model = make_pipeline(StandardScaler(), PolynomialFeatures(3), LinearRegression())
            fitted = cross_val_predict(model, x[ok, None], y[ok], cv=folds)
            remaining = min(1.0, float(np.var(y[ok] - fitted) / np.var(y[ok])))
            records.append({"output": output, "figure": figure, "error_sd": errors[figure],
                            "width_now": width, "width_after": width * np.sqrt(remaining),
                            "variance_explained": 1.0 - remaining})
    return pd.DataFrame(records).sort_values(["output", "width_after"]).reset_index(drop=True)


def decompose(factors: Factors, evaluate: Callable[[list[tuple[dict[str, Any], int]]], pd.DataFrame],
              outputs: list[str], candidates: dict[str, float], n: int, seed: int) -> tuple[pd.DataFrame,
                                                                                            pd.DataFrame]:
    """Run the design through `evaluate` (a list of (parameters, seed) -> one row per run with the output and
    candidate columns) and return (Sobol indices, value-of-information table)."""
    rows = design(factors, n, seed)
    table = evaluate([factors.run_settings(row) for row in rows])
    indices = sobol_indices(factors, table[outputs], seed)
    independent = independent_rows(n, len(set(factors.groups)))
    voi = value_of_information(table.iloc[independent][outputs].reset_index(drop=True),
                               table.iloc[independent][list(candidates)].reset_index(drop=True), candidates, seed)
    return indices, voi


# --- on the model ---------------------------------------------------------------------------------------------------
HEADLINE_OUTPUTS = ("or_share_cn@2030-12", "or_share_open@2030-12")
# Figures a source could publish next, each observed with the tolerance of the published figure it repeats
# (calibration/targets.toml): the error of a future figure is taken to be that of its past counterpart.
CANDIDATE_FIGURES = {
    "or_share_cn@2026-06": "OR3",        # OpenRouter Chinese-origin token share, mid-2026
    "or_share_cn@2026-12": "OR3",
    "or_share_open@2026-06": "OR5",      # OpenRouter open-weight token share, mid-2026
    "ent_share_open_us@2026-12": "ENT2",  # US enterprise open-weight share, 2026 survey
}


def _split(column: str) -> tuple[str, str]:
    metric, month = column.split("@")
    return metric, month


def projection_row(job: tuple[dict[str, Any], int, int, tuple[str, ...]]) -> dict[str, float]:
    """One baseline run to the last month any column needs; the columns' values (observable@month)."""
    from sim.running.runner import run_member

    params, seed, n_agents, columns = job
    end = max(_split(c)[1] for c in columns)
    frame = run_member({**params, "n_agents": n_agents, "end": end}, seed)
    return {c: float(frame.loc[_split(c)[1], _split(c)[0]]) for c in columns}


CHUNK = 64  # runs per stored chunk: an interrupted stage loses at most this many


def model_evaluator(executor, n_agents: int, columns: list[str], folder: Path | None = None,
                    progress: bool = False) -> Callable:
    """evaluate(runs) for `decompose`: each (parameters, seed) run by the executor's workers, in order. With a
    `folder`, each chunk of runs is stored as it finishes and read back on a rerun (the stage resumes; the
    folder sits under the calibration's fingerprint, so a changed design never meets old chunks)."""

    def evaluate(runs: list[tuple[dict[str, Any], int]]) -> pd.DataFrame:
        jobs = [(params, seed, n_agents, tuple(columns)) for params, seed in runs]
        bar = tqdm(total=len(jobs), desc="uncertainty runs", unit="run", disable=not progress, dynamic_ncols=True)
        parts = []
        for start in range(0, len(jobs), CHUNK):
            path = None if folder is None else folder / f"chunk-{start // CHUNK:04d}.parquet"
            if path is not None and path.is_file():
                parts.append(pd.read_parquet(path))
                bar.update(len(jobs[start:start + CHUNK]))
                continue
            part = pd.DataFrame(executor.gather(projection_row, jobs[start:start + CHUNK], bar), columns=columns)
            if path is not None:
                atomic_write(path, part.to_parquet)
            parts.append(part)
        bar.close()
        return pd.concat(parts, ignore_index=True)

    return evaluate


def candidate_errors(targets) -> dict[str, float]:
    """Observation error (sd) of each candidate figure: the tolerance of the published figure it repeats."""
    by_id = {t.id: t for t in targets}
    return {figure: float(by_id[target].tolerance) for figure, target in CANDIDATE_FIGURES.items() if target in by_id}


# --- the calibration stage -------------------------------------------------------------------------------------------
SOBOL_SAMPLES = 128  # N of Saltelli's design: N x (groups + 2) runs to 2030-12 (1,536 with 10 groups: 5 fitted, 4
# of assumptions and the seed, at 2,000 agents)
SOBOL_SAMPLES_QUICK = 4
POSTERIOR_SAMPLE = 1000  # equal-weight rows the group factors pick from
PROJECTION_AGENTS = 2000  # as `odsim project`


def design_key(factors: Factors, n: int, agents: int, columns: list[str]) -> str:
    """Short digest of what the stored runs depend on besides the calibration (which names the parent folder)."""
    described = json.dumps({"names": factors.names, "groups": factors.groups, "n": n, "agents": agents,
                            "columns": columns, "seed_base": factors.seed_base})
    return "design-" + hashlib.sha256(described.encode()).hexdigest()[:12]


def uncertainty_stage(particles: pd.DataFrame, prior_names: list[str], targets, executor, seed: int,
                      quick: bool = False, quick_agents: int = 300, folder: Path | None = None,
                      progress: bool = False) -> dict[str, pd.DataFrame]:
    """Variance decomposition and value of information of the baseline's 2030 headline outputs under the
    posterior (tables `uncertainty_indices` and `value_of_information`); `quick`: a smoke-test design; runs
    stored in `folder` as they finish (model_evaluator)."""
    from sim.core.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS

    sample = equal_weight_sample(particles, prior_names, POSTERIOR_SAMPLE, seed)
    assumptions = {name: PARAMETERS[name].drawn for name in PROJECTION_ASSUMPTIONS
                   if name not in OBSERVATION_ONLY_ASSUMPTIONS}
    factors = Factors(sample, assumptions, seed_base=seed % 1_000_000 * 1000)
    errors = candidate_errors(targets)
    agents = quick_agents if quick else PROJECTION_AGENTS
    n = SOBOL_SAMPLES_QUICK if quick else SOBOL_SAMPLES
    columns = list(HEADLINE_OUTPUTS) + list(errors)
    if folder is not None:  # one folder per design: a changed grouping never reads another design's chunks
        folder = folder / design_key(factors, n, agents, columns)
        folder.mkdir(parents=True, exist_ok=True)
    evaluate = model_evaluator(executor, agents, columns, folder, progress)
    indices, voi = decompose(factors, evaluate, list(HEADLINE_OUTPUTS), errors, n, seed)
    return {"uncertainty_indices": indices, "value_of_information": voi}


def markdown(indices: pd.DataFrame, voi: pd.DataFrame) -> list[str]:
    """The report's section on where the 2030 uncertainty comes from."""
    lines = ["## Where the 2030 uncertainty comes from", "",
             "Grouped Sobol indices (SALib, Saltelli design) of the baseline's 2030-12 headline outputs, "
             f"{PROJECTION_AGENTS:,} agents: each fitted parameter group drawn as a block from the posterior, each "
             "group of projection assumptions from its documented ranges, and the seed, which also draws the imputed "
             "capabilities and the Hugging Face background (observation only, it moves no share). S1: share of the "
             "output's variance the group explains alone; ST: with its interactions (95% confidence half-widths). "
             "sim/calibration/uncertainty.py; docs/ODD.md 7.12 measures the assumptions one at a time.", ""]
    for output, part in indices.groupby("output", sort=False):
        sd = float(np.sqrt(part.variance.iloc[0]))
        lines += [f"**{output}** (standard deviation {sd:.3f})", "", "| group | S1 | ST | parameters |",
                  "|---|---|---|---|"]
        for _, r in part.sort_values("ST", ascending=False).iterrows():
            members = r.get("members", "")  # tables written before the groups were named have none
            lines.append(f"| {r.group} | {r.S1:.2f} ± {r.S1_conf:.2f} | {r.ST:.2f} ± {r.ST_conf:.2f} | "
                         f"{members if isinstance(members, str) else ''} |")
        lines.append("")
    lines += ["**Value of information.** Expected 90% interval width of each output once a candidate figure is "
              "published, observed with the tolerance of the published figure it repeats (cross-validated cubic "
              "regression of the output on the noisy figure over independent posterior runs; normal approximation):",
              "", "| output | candidate figure | error sd | width now | width after | variance explained |",
              "|---|---|---|---|---|---|"]
    for _, r in voi.iterrows():
        lines.append(f"| {r.output} | {r.figure} | {r.error_sd:.2f} | {r.width_now:.2f} | {r.width_after:.2f} | "
                     f"{r.variance_explained:.2f} |")
    return lines + [""]
