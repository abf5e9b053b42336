"""Calibration targets (calibration/targets.toml): the observed figures, checked strictly, and how a simulated
run is compared with each of them.

Each target turns a simulated run (a table by month with one column per observable) into one number, the
*statistic*, and compares it with the observed value:

    value, mean      mean of the metric over the window (a dated figure: the window is its date uncertainty)
    max, min         largest / smallest monthly value in the window (e.g. a peak)
    increase         growth of a cumulative metric over the window (end month minus the month before start)
    ratio_mean       mean(metric) / mean(sum of `denominator` metrics) over the window
    ratio_increase   increase(metric) / increase(sum of `denominator`) over the window
    crossover        month in which `metric` first reaches `other` (qualitative: "A overtakes B" in [start, end]);
                     `tolerance` is in months; when it has not happened by the end of the run the month is
                     extrapolated from how fast the gap was closing (see _crossover)
    order            metric > followed_by[0] > followed_by[1] ... by their window means (qualitative ordering);
                     the statistic is the smallest log-ratio between neighbours, a hit when >= 0 (stored as
                     condition "above", value 0); `tolerance` is in log units

`scale = "log"` compares counts spanning orders of magnitude by relative error: the discrepancy is
ln(statistic / value) / ln((value + tolerance) / value), so overshooting and undershooting by the same factor
cost the same. `condition` says what counts as a hit: "within" (default; |statistic - value| <= tolerance), "above"
(statistic >= value) or "below" (statistic <= value); one-sided figures ("more than 180,000") use the latter.
The discrepancy (distance outside the hit region in tolerance units) is what calibration minimises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core import checks as check
from sim.core.calendar import month_label, parse_month

TARGETS_TOML = Path(__file__).resolve().parents[2] / "calibration" / "targets.toml"

STATISTICS = ("value", "mean", "max", "min", "increase", "ratio_mean", "ratio_increase", "crossover", "order")
CONDITIONS = ("within", "above", "below")
GRADES = ("Q", "S", "S?", "Q/S")
REQUIRED = ("id", "metric", "start", "end", "statistic", "tolerance", "population", "source", "grade")
OPTIONAL = ("value", "condition", "scale", "denominator", "other", "followed_by", "fit", "weight", "note")
SCALES = ("linear", "log")
QUALITATIVE = ("crossover", "order")  # statistics judged by their window and tolerance, with no `value`
NEEDS = {"ratio_mean": "denominator", "ratio_increase": "denominator", "crossover": "other", "order": "followed_by"}
LOG_FLOOR = 1e-3  # on a log scale a statistic below this fraction of the value counts as this fraction
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Target:
    id: str
    metric: str
    start: str
    end: str
    statistic: str
    value: float
    tolerance: float
    population: str
    source: str
    grade: str
    condition: str = "within"
    scale: str = "linear"
    denominator: tuple[str, ...] = ()
    other: str = ""
    followed_by: tuple[str, ...] = ()
    fit: bool = True
    weight: float = 1.0
    note: str = ""
    metrics: tuple[str, ...] = field(default=(), compare=False)  # every observable the target reads

    @property
    def midpoint(self) -> str:
        """Month in the middle of the target's window, where plots draw the observed point."""
        return month_label((parse_month(self.start) + parse_month(self.end)) // 2)

    @property
    def qualitative(self) -> bool:
        return self.statistic in QUALITATIVE

    @property
    def hit_condition(self) -> str:
        """Human-readable rule for a hit."""
        if self.statistic == "crossover":
            return f"{self.metric} reaches {self.other} in {self.start}..{self.end} (+-{self.tolerance:g} months)"
        if self.statistic == "order":
            return " > ".join((self.metric, *self.followed_by))
        if self.condition == "above":
            return f">= {self.value:g}"
        if self.condition == "below":
            return f"<= {self.value:g}"
        return f"{self.value:g} +- {self.tolerance:g}"

    # --- comparison with a simulated run -----------------------------------------------------------------------
    def statistic_of(self, run: pd.DataFrame) -> float:
        """This target's statistic for one run (table indexed by 'YYYY-MM', one column per observable)."""
        if self.statistic == "crossover":  # read over the whole run; the window only judges the month
            return _crossover(run, self.metric, self.other)
        window = run.loc[self.start:self.end]
        if window.empty:
            raise ValueError(f"target {self.id}: the run ({run.index[0]}..{run.index[-1]}) does not cover "
                             f"{self.start}..{self.end}")
        stat = self.statistic
        if stat in ("value", "mean"):
            return nan_mean(window[self.metric])
        if stat == "max":
            return float(np.nanmax(window[self.metric].to_numpy(float)))
        if stat == "min":
            return float(np.nanmin(window[self.metric].to_numpy(float)))
        if stat == "increase":
            return _increase(run, self.metric, self.start, self.end)
        if stat == "ratio_mean":
            return _ratio(nan_mean(window[self.metric]), nan_mean(window[list(self.denominator)].sum(axis=1)))
        if stat == "ratio_increase":
            denominator = sum(_increase(run, m, self.start, self.end) for m in self.denominator)
            return _ratio(_increase(run, self.metric, self.start, self.end), denominator)
        if stat == "order":
            means = [nan_mean(window[m]) for m in (self.metric, *self.followed_by)]
            gaps = [math.log(max(a, 1e-12) / max(b, 1e-12)) for a, b in zip(means, means[1:])]
            return float(min(gaps))
        raise AssertionError(stat)

    def discrepancy(self, statistic: float) -> float:
        """Distance of `statistic` outside the hit region, in tolerance units (0 = exact or condition met).
        NaN statistics (nothing to measure) count as a clear miss."""
        if not np.isfinite(statistic):
            return 10.0
        if self.statistic == "crossover":
            lo, hi = parse_month(self.start), parse_month(self.end)
            return max(0.0, lo - statistic, statistic - hi) / self.tolerance
        if self.scale == "log":  # relative error: ln(statistic / value) over ln((value + tolerance) / value)
            gap = math.log(max(statistic, LOG_FLOOR * self.value) / self.value)
            width = math.log1p(self.tolerance / self.value)
        else:
            gap, width = statistic - self.value, self.tolerance
        if self.condition == "above":
            return max(0.0, -gap) / width
        if self.condition == "below":
            return max(0.0, gap) / width
        return abs(gap) / width

    def hit(self, statistic: float) -> bool:
        """Whether a statistic (e.g. the posterior-predictive median) satisfies the target."""
        if not np.isfinite(statistic):
            return False
        if self.condition in ("above", "below"):
            return self.discrepancy(statistic) == 0.0
        return self.discrepancy(statistic) <= 1.0

    def format(self, statistic: float) -> str:
        """A statistic as text in the target's units."""
        if not np.isfinite(statistic):
            return "n/a"
        if self.statistic == "crossover":
            return month_label(int(round(statistic)))
        if self.statistic == "order":
            return f"{statistic:+.2f} (log gap)"
        if abs(statistic) >= 1e4:
            return f"{statistic:,.0f}"
        return f"{statistic:.3g}"


def nan_mean(series) -> float:
    """Mean of the finite values; NaN (and no RuntimeWarning) when there are none."""
    values = np.asarray(series, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _increase(run: pd.DataFrame, metric: str, start: str, end: str) -> float:
    before = month_label(parse_month(start) - 1)
    base = float(run.at[before, metric]) if before in run.index else 0.0
    return float(run.at[end, metric]) - base


CROSSOVER_HORIZON = 120  # months after the run beyond which an extrapolated crossover is not told apart


def _crossover(run: pd.DataFrame, metric: str, other: str) -> float:
    """Month index when `metric` first reaches `other` after `other` has started. If it has not by the end of
    the run, the month is extrapolated: the remaining gap over the speed at which it closed in the last three
    months (at least one month after the run, at most CROSSOVER_HORIZON; the horizon if the gap is not closing),
    so that calibration can tell a near miss from a distant one."""
    a, b = run[metric].to_numpy(float), run[other].to_numpy(float)
    months = [parse_month(d) for d in run.index]
    started = np.flatnonzero(b > 0)
    if started.size:
        ahead = np.flatnonzero((a >= b) & (np.arange(len(a)) >= started[0]) & (a > 0))
        if ahead.size:
            return float(months[ahead[0]])
    gap = b[-1] - a[-1]
    closing = (gap - (b[-4] - a[-4])) / -3.0 if len(a) >= 4 else 0.0
    wait = gap / closing if closing > 0 else CROSSOVER_HORIZON
    return float(months[-1] + min(max(wait, 1.0), CROSSOVER_HORIZON))


# --- observation scales ---------------------------------------------------------------------------------------------
# Pure observation scales: each multiplies a group of observables and nothing else in the model (no feedback on
# choice), so for a given parameter set it is solved on the runs, not sampled (issue 18).
OBSERVATION_SCALES = {"downloads_scale": "hf_downloads_cum_", "derivatives_scale": "hf_derivatives_cum_"}
LEVEL_STATISTICS = ("value", "mean", "max", "min", "increase")  # statistics proportional to their metric's scale


def scale_targets(targets: list[Target], prefix: str) -> list[Target]:
    """Fitted level targets that read only observables with `prefix`: they set that observation scale."""
    return [t for t in targets if t.fit and t.statistic in LEVEL_STATISTICS and t.scale == "log"
            and all(m.startswith(prefix) for m in t.metrics)]


def solve_observation_scales(targets: list[Target], frames: list[pd.DataFrame], params: dict,
                             sampled: Iterable[str] = ()) -> dict[str, float]:
    """For each observation scale, the value that minimises the weighted sum of squared discrepancies of its level
    targets over the runs (made at `params`), within the parameter's range. Every level statistic is proportional
    to the scale and each discrepancy is convex in its logarithm, so a bounded one-dimensional search is exact.
    A scale no target reads, or one the calibration samples (in `sampled`: a prior was given for it), keeps its value."""
    from scipy.optimize import minimize_scalar

    from sim.core.parameters import PARAMETERS

    solved = {}
    for name, prefix in OBSERVATION_SCALES.items():
        fitted = scale_targets(targets, prefix)
        current = float(params.get(name, PARAMETERS[name].default))
        if not fitted or name in sampled:
            solved[name] = current
            continue
        at_current = [(t, t.statistic_of(f)) for t in fitted for f in frames]

        def loss(log_factor: float) -> float:
            factor = math.exp(log_factor)
            return sum(t.weight * min(t.discrepancy(v * factor), 1e3) ** 2 for t, v in at_current)

        low, high = PARAMETERS[name].low / current, PARAMETERS[name].high / current
        best = minimize_scalar(loss, bounds=(math.log(low), math.log(high)), method="bounded",
                               options={"xatol": 1e-6})
        solved[name] = current * math.exp(best.x)
    return solved


def rescale(frame: pd.DataFrame, params: dict, solved: dict[str, float]) -> pd.DataFrame:
    """The run's table as if it had been made with the solved scales (only observation columns change)."""
    from sim.core.parameters import PARAMETERS

    out = frame.copy()
    for name, prefix in OBSERVATION_SCALES.items():
        columns = [c for c in out.columns if c.startswith(prefix)]
        out[columns] = out[columns] * (solved[name] / float(params.get(name, PARAMETERS[name].default)))
    return out


def with_solved_scales(targets: list[Target], frames: list[pd.DataFrame], params: dict,
                       sampled: Iterable[str] = ()) -> list[pd.DataFrame]:
    """The runs of one parameter set with its observation scales solved on them (solve_observation_scales)."""
    solved = solve_observation_scales(targets, frames, params, sampled)
    return [rescale(frame, params, solved) for frame in frames]


# --- loading and validation ------------------------------------------------------------------------------------
def _known_metrics() -> set[str]:
    from sim.core.observe import metric_names

    return set(metric_names())


def _parse(path: Path, spec: dict, index: int, metrics: set[str]) -> Target:
    where = f"target[{index}]" + (f" ({spec['id']})" if isinstance(spec.get("id"), str) else "")
    check.table(path, where, spec, REQUIRED + OPTIONAL, required=REQUIRED)

    def fail(key, message):
        check.fail(path, f"{where}.{key}", message)

    for key in ("id", "metric", "start", "end", "statistic", "population", "source", "grade"):
        check.text(path, f"{where}.{key}", spec[key], required=True)
    if not _ID.match(spec["id"]):
        fail("id", "must start with a letter and contain only letters, digits and _")
    stat = check.choice(path, f"{where}.statistic", spec["statistic"], STATISTICS)
    if spec["metric"] not in metrics:
        fail("metric", f"unknown observable {spec['metric']!r}; allowed: observables from sim/core/observe.py, e.g. "
                       "or_share_cn, hf_downloads_cum_qwen")
    start, end = (check.month(path, f"{where}.{key}", spec[key]) for key in ("start", "end"))
    if end < start:
        fail("end", f"{spec['end']} is before start {spec['start']}")
    check.choice(path, f"{where}.grade", spec["grade"], GRADES)
    tolerance = check.number(path, f"{where}.tolerance", spec["tolerance"], 0, low_open=True)
    condition = check.choice(path, f"{where}.condition", spec.get("condition", "within"), CONDITIONS)
    if stat in QUALITATIVE:
        for key in ("value", "condition"):
            if key in spec:
                fail(key, f"not used by statistic {stat!r} (the window and tolerance say what is a hit)")
        # an ordering holds when the smallest log-gap between neighbours is positive
        value, condition = (0.0, "above") if stat == "order" else (float("nan"), "within")
    else:
        if "value" not in spec:
            fail("value", "missing")
        value = check.number(path, f"{where}.value", spec["value"])
    scale = check.choice(path, f"{where}.scale", spec.get("scale", "linear"), SCALES)
    if scale == "log" and (stat in QUALITATIVE or not value > 0):
        fail("scale", "log needs a positive value (and is not used by crossover or order)")
    for key in ("denominator", "other", "followed_by"):
        if key in spec and NEEDS.get(stat) != key:
            fail(key, f"only used by statistic {', '.join(s for s, k in NEEDS.items() if k == key)}")
    listed: list = []
    if stat in NEEDS:
        key = NEEDS[stat]
        if key not in spec:
            fail(key, f"required by statistic {stat!r}")
        if key == "other":
            listed = [check.choice(path, f"{where}.other", spec[key], sorted(metrics))]
        else:
            listed = check.names(path, f"{where}.{key}", spec[key], sorted(metrics), what="observable")
    fit = check.flag(path, f"{where}.fit", spec.get("fit", True))
    weight = check.number(path, f"{where}.weight", spec.get("weight", 1.0), 0, 10, low_open=True)
    note = check.text(path, f"{where}.note", spec.get("note", ""))
    return Target(
        id=spec["id"], metric=spec["metric"], start=spec["start"], end=spec["end"], statistic=stat,
        value=float(value), tolerance=float(tolerance), population=spec["population"], source=spec["source"],
        grade=spec["grade"], condition=condition, scale=scale,
        denominator=tuple(spec.get("denominator", ())), other=spec.get("other", ""),
        followed_by=tuple(spec.get("followed_by", ())), fit=fit, weight=float(weight), note=note,
        metrics=tuple(dict.fromkeys([spec["metric"], *listed])),
    )


def load_targets(path: Path = TARGETS_TOML, missing_ok: bool = True) -> list[Target]:
    """All targets, validated; raises InputError naming the file, target and key for anything wrong.
    A missing file gives [] when `missing_ok` (plots without calibration data)."""
    path = Path(path)
    if not path.is_file() and missing_ok:
        return []
    data = check.table(path, "", check.read_toml(path, "targets file", "at least one [[target]] table"), ("target",))
    specs = data.get("target", [])
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        check.fail(path, "target", "needs at least one [[target]] table")
    metrics = _known_metrics()
    targets = [_parse(path, spec, i, metrics) for i, spec in enumerate(specs)]
    seen: set[str] = set()
    for t in targets:
        if t.id in seen:
            check.fail(path, f"target ({t.id}).id", "duplicate id")
        seen.add(t.id)
    return targets
