"""Scenario discovery: in which parameter boxes does an outcome of interest happen? (PRIM, ema-workbench)

Each run of a sweep is one case: its swept parameter values are the inputs and the outcome is a condition on an
observable at a month, e.g. `or_share_cn > 0.5` in 2030-12. Replicates stay separate cases, so a box's density is
the share of runs (seeds included) in it where the outcome happens. PRIM peels the parameter space down to boxes
that trade coverage (share of all cases of interest inside the box) against density (share of cases in the box
that are of interest). From the first box's peeling trajectory we take the box with the highest coverage among
those with density at least `min_density` (the densest box if none reaches it); further boxes, found on the cases
left outside, are kept while they reach `min_density`.
"""

from __future__ import annotations

import json
import logging
import operator
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core import checks as check
from sim.exploration.sweep import read_manifest, read_results

OPERATORS = {">": (operator.gt, "gt"), ">=": (operator.ge, "ge"), "<": (operator.lt, "lt"),
             "<=": (operator.le, "le")}
OUTCOME, MONTH = check.Argument("outcome"), check.Argument("month")  # discover()'s arguments, named in errors
_OUTCOME = re.compile(r"^\s*([a-z0-9_]+)(?:@(\d{4}-\d{2}))?\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Outcome:
    observable: str
    op: str
    threshold: float
    month: str

    def __str__(self) -> str:
        return f"{self.observable} {self.op} {self.threshold:g} in {self.month}"

    @property
    def slug(self) -> str:
        return f"{self.observable}_{OPERATORS[self.op][1]}_{self.threshold:g}_{self.month}"

    def holds(self, values: np.ndarray) -> np.ndarray:
        """True where the outcome happens; an undefined value (NaN) counts as not happening."""
        with np.errstate(invalid="ignore"):
            return OPERATORS[self.op][0](values, self.threshold) & ~np.isnan(values)


def parse_outcome(text: str, manifest: dict, month: str | None = None) -> Outcome:
    match = _OUTCOME.match(text)
    if not match:
        check.fail(OUTCOME, "", f"{text!r}: write OBSERVABLE OP NUMBER, e.g. \"or_share_cn > 0.5\" (OP one of "
                   f"{', '.join(OPERATORS)}; optionally OBSERVABLE@YYYY-MM)")
    observable, at, op, number = match.groups()
    if observable not in manifest["observables"]:
        check.fail(OUTCOME, "", f"{observable!r} is not in this sweep; kept observables: "
                   f"{', '.join(manifest['observables'])}")
    if at and month and at != month:
        check.fail(OUTCOME, "", f"names month {at} but the month asked for is {month}")
    month = at or month or manifest["months"][-1]
    if month not in manifest["months"]:
        check.fail(MONTH, "", f"{month!r} is not kept in this sweep; kept months: {', '.join(manifest['months'])}")
    try:
        threshold = float(number)
    except ValueError:
        check.fail(OUTCOME, "", f"{number!r} is not a number")
    return Outcome(observable, op, threshold, month)


def cases(folder: Path, outcome: Outcome, parameters: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Swept parameter values of every run (PRIM's inputs) and whether the outcome happens in it."""
    table = read_results(folder, columns=["run_id", *parameters, outcome.observable], months=[outcome.month])
    x = table[parameters].copy()
    for name in parameters:
        if not pd.api.types.is_numeric_dtype(x[name]) or pd.api.types.is_bool_dtype(x[name]):
            x[name] = x[name].astype(str).astype("category")  # PRIM treats these as categories
    return x, outcome.holds(table[outcome.observable].to_numpy(dtype=float))


def _limits(box_lim: pd.DataFrame, box_init: pd.DataFrame, p_values: dict, box: int, swept: dict) -> list[dict]:
    """Restricted parameters of one box. A side PRIM left open is reported at the swept range's bound (PRIM
    itself only knows the smallest and largest value sampled)."""
    rows = []
    for name in box_lim.columns:
        low, high = box_lim[name].iloc[0], box_lim[name].iloc[1]
        full_low, full_high = box_init[name].iloc[0], box_init[name].iloc[1]
        if isinstance(low, set):
            if low == full_low:
                continue
            text_low = text_high = ", ".join(sorted(map(str, low)))
            full = ", ".join(sorted(map(str, full_low)))
            rows.append({"box": box, "parameter": name, "low": text_low, "high": text_high, "range_low": full,
                         "range_high": full, "qp_low": np.nan, "qp_high": np.nan})
            continue
        if low == full_low and high == full_high:
            continue
        range_low, range_high = swept[name].get("low", full_low), swept[name].get("high", full_high)
        qp = [np.nan if q is None or q < 0 else float(q) for q in p_values.get(name, (None, None))]
        rows.append({"box": box, "parameter": name,
                     "low": float(range_low if low == full_low else low),
                     "high": float(range_high if high == full_high else high),
                     "range_low": float(range_low), "range_high": float(range_high),
                     "qp_low": qp[0], "qp_high": qp[1]})
    return rows


def run_prim(x: pd.DataFrame, y: np.ndarray, swept: dict, min_density: float = 0.8, max_boxes: int = 3,
             mass_min: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """PRIM boxes: (stats per box, limits of each restricted parameter, first box's peeling trajectory).
    `swept` maps each parameter to its spec entry ({low, high} or {values}) as in the sweep's manifest."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optional-backend notices printed on import
        from ema_workbench.analysis import prim
    logging.getLogger("EMA").setLevel(logging.WARNING)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")  # inside ema-workbench, harmless
        finder = prim.Prim(x, y.astype(int), mass_min=mass_min)
    stats, limits, trajectory = [], [], None
    for number in range(1, max_boxes + 1):
        box = finder.find_box()
        if box is None:
            break
        traj = box.peeling_trajectory.reset_index(drop=True)
        good = traj[traj.density >= min_density]
        chosen = int(good.coverage.idxmax() if len(good) else traj.density.idxmax())
        if number > 1 and (traj.density[chosen] < min_density or traj.k[chosen] == 0):
            break  # only a first box is reported below the density asked for
        box.select(chosen)
        if trajectory is None:
            trajectory = traj.assign(chosen=traj.index == chosen)
        row = traj.loc[chosen]
        stats.append({"box": number, "coverage": float(row.coverage), "density": float(row.density),
                      "mass": float(row.mass), "restricted": int(row.res_dim), "runs": int(row.n),
                      "runs_of_interest": int(row.k)})
        limits += _limits(box.box_lims[chosen], finder.box_init, box.p_values[chosen], number, swept)
        if finder.yi_remaining.size == 0 or y[finder.yi_remaining].sum() == 0:
            break
    return pd.DataFrame(stats), pd.DataFrame(limits, columns=["box", "parameter", "low", "high", "range_low",
                                                                "range_high", "qp_low", "qp_high"]), trajectory


def plot(stats: pd.DataFrame, limits: pd.DataFrame, trajectory: pd.DataFrame, outcome: Outcome,
         path: Path) -> None:
    """Left: the first box's coverage-density trade-off (chosen box circled). Right: each box's limits as a
    share of the swept range."""
    from sim import figures  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.8 + max(3.5, 0.5 * max(len(limits), 1))),
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    points = left.scatter(trajectory.coverage, trajectory.density, c=trajectory.res_dim, cmap="viridis", s=18)
    chosen = trajectory[trajectory.chosen]
    left.scatter(chosen.coverage, chosen.density, s=140, facecolors="none", edgecolors="red", label="chosen box")
    fig.colorbar(points, ax=left, label="restricted parameters")
    left.set(xlabel="coverage", ylabel="density", xlim=(0, 1.02), ylim=(0, 1.02), title="PRIM peeling trajectory")
    left.legend(loc="lower left", fontsize=8)

    labels = []
    for k, row in enumerate(limits.itertuples()):
        right.barh(k, 1.0, color="0.9")
        if isinstance(row.low, str):  # a list of values: name the ones kept
            right.text(0.02, k, f"in {{{row.low}}}", va="center", fontsize=8, color=f"C{int(row.box) - 1}")
        else:
            span = row.range_high - row.range_low
            lo, hi = (row.low - row.range_low) / span, (row.high - row.range_low) / span
            right.barh(k, hi - lo, left=lo, color=f"C{int(row.box) - 1}")
            right.text(1.01, k, f"{row.low:.3g} to {row.high:.3g}", va="center", fontsize=8)
        labels.append(f"box {row.box}: {row.parameter}")
    right.set_yticks(range(len(labels)), labels)
    right.set_xlim(0, 1.3)
    right.invert_yaxis()
    right.set(xlabel="share of the swept range", title="box limits")
    right.set_xticks([0, 0.5, 1])
    if not labels:
        right.text(0.5, 0.5, "no restriction", ha="center", transform=right.transAxes)
    fig.suptitle(f"Where {outcome}", fontsize=11)
    figures.save(fig, path, 120)


def summary(stats: pd.DataFrame, limits: pd.DataFrame, outcome: Outcome, n_runs: int, n_interest: int,
            name: str, min_density: float) -> str:
    lines = [f"# Scenario discovery: {name}", "",
             f"Outcome: {outcome}. It happens in {n_interest} of {n_runs} runs ({n_interest / n_runs:.0%}).",
             "", f"PRIM boxes (ema-workbench); chosen for the highest coverage at density >= {min_density:g}.",
             "Coverage: share of all runs with the outcome that fall in the box. Density: share of runs in the box",
             "with the outcome. qp: quasi-p-value of each restriction (small = the restriction matters).", ""]
    for row in stats.itertuples():
        lines += [f"## Box {row.box}: coverage {row.coverage:.0%}, density {row.density:.0%}, "
                  f"mass {row.mass:.0%} ({row.runs} runs)", ""]
        sub = limits[limits.box == row.box]
        if sub.empty:
            lines += ["No restriction: the whole swept space.", ""]
            continue
        for lim in sub.itertuples():
            if isinstance(lim.low, str):
                lines.append(f"- {lim.parameter} in {{{lim.low}}} (of {{{lim.range_low}}})")
            else:
                qp = " ".join(f"{q:.2g}" for q in (lim.qp_low, lim.qp_high) if not np.isnan(q))
                lines.append(f"- {lim.parameter} from {lim.low:.4g} to {lim.high:.4g} (swept {lim.range_low:.4g} "
                             f"to {lim.range_high:.4g}){f'; qp {qp}' if qp else ''}")
        lines.append("")
    return "\n".join(lines)


def discover(folder: Path, outcome_text: str, month: str | None = None, min_density: float = 0.8,
             max_boxes: int = 3) -> tuple[Path, str]:
    """Run PRIM on a finished (or partly finished) sweep; write FOLDER/discover/<outcome>/; return it and the
    summary text."""
    from sim.running.store import replace_folder

    manifest = read_manifest(folder)
    if manifest is None:
        check.fail(folder, "", "not a sweep folder (no manifest.json); run odsim sweep first")
    check.number(check.Argument("min_density"), "", min_density, 0.0, 1.0, low_open=True)
    check.whole(check.Argument("boxes"), "", max_boxes, 1)
    outcome = parse_outcome(outcome_text, manifest, month)
    parameters = list(manifest["parameters"])
    try:
        x, y = cases(folder, outcome, parameters)
    except FileNotFoundError as err:
        check.fail(folder, "", str(err))
    n_interest = int(y.sum())
    if n_interest == 0 or n_interest == len(y):
        check.fail(OUTCOME, "", f"{outcome} happens in {n_interest} of {len(y)} runs; PRIM needs runs where it "
                   "happens and runs where it does not (try another threshold)")
    stats, limits, trajectory = run_prim(x, y, manifest["parameters"], min_density, max_boxes)
    text = summary(stats, limits, outcome, len(y), n_interest, manifest["name"], min_density)
    if manifest.get("status") != "complete":
        text += f"\nNote: the sweep is not complete; this uses the {len(y)} runs finished so far.\n"

    def fill(tmp: Path) -> None:
        stats.to_csv(tmp / "boxes.csv", index=False, float_format="%.6g")
        limits.to_csv(tmp / "limits.csv", index=False, float_format="%.6g")
        trajectory.to_csv(tmp / "trajectory.csv", index=False, float_format="%.6g")
        plot(stats, limits, trajectory, outcome, tmp / "discover.png")
        (tmp / "summary.md").write_text(text)
        (tmp / "outcome.json").write_text(json.dumps({"outcome": str(outcome), "runs": len(y),
                                                      "runs_of_interest": n_interest,
                                                      "min_density": min_density}, indent=2) + "\n")

    return replace_folder(folder / "discover" / outcome.slug, fill), text
