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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.calendar import month_label, parse_month

TARGETS_TOML = Path(__file__).resolve().parent.parent / "calibration" / "targets.toml"

STATISTICS = ("value", "mean", "max", "min", "increase", "ratio_mean", "ratio_increase", "crossover", "order")
CONDITIONS = ("within", "above", "below")
GRADES = ("Q", "S", "S?", "Q/S")
REQUIRED = ("id", "metric", "start", "end", "statistic", "tolerance", "population", "source", "grade")
OPTIONAL = ("value", "condition", "scale", "denominator", "other", "followed_by", "fit", "weight", "note")
SCALES = ("linear", "log")
LOG_FLOOR = 1e-3  # on a log scale a statistic below this fraction of the value counts as this fraction
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TargetError(ValueError):
    """targets.toml is invalid: says which file, which target and key, and what is allowed."""

    def __init__(self, path: Path | str, key: str, message: str):
        super().__init__(f"{path}: {key}: {message}")
        self.path, self.key = str(path), key


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
        return self.statistic in ("crossover", "order")

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
            return _nanmean(window[self.metric])
        if stat == "max":
            return float(np.nanmax(window[self.metric].to_numpy(float)))
        if stat == "min":
            return float(np.nanmin(window[self.metric].to_numpy(float)))
        if stat == "increase":
            return _increase(run, self.metric, self.start, self.end)
        if stat == "ratio_mean":
            return _ratio(_nanmean(window[self.metric]), _nanmean(window[list(self.denominator)].sum(axis=1)))
        if stat == "ratio_increase":
            denominator = sum(_increase(run, m, self.start, self.end) for m in self.denominator)
            return _ratio(_increase(run, self.metric, self.start, self.end), denominator)
        if stat == "order":
            means = [_nanmean(window[m]) for m in (self.metric, *self.followed_by)]
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


def _nanmean(series) -> float:
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


# --- loading and validation ------------------------------------------------------------------------------------
def _known_metrics() -> set[str]:
    from sim.observe import metric_names

    return set(metric_names())


def _parse(path: Path, spec: dict, index: int, metrics: set[str]) -> Target:
    where = f"target[{index}]" + (f" ({spec['id']})" if isinstance(spec.get("id"), str) else "")

    def fail(key, message):
        raise TargetError(path, f"{where}.{key}", message)

    unknown = sorted(set(spec) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        fail(unknown[0], f"unknown key; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    for key in REQUIRED:
        if key not in spec:
            fail(key, "missing")
    for key in ("id", "metric", "start", "end", "statistic", "population", "source", "grade"):
        if not isinstance(spec[key], str) or not spec[key].strip():
            fail(key, "must be non-empty text")
    if not _ID.match(spec["id"]):
        fail("id", "must start with a letter and contain only letters, digits and _")
    stat = spec["statistic"]
    if stat not in STATISTICS:
        fail("statistic", f"{stat!r} is not allowed; allowed: {', '.join(STATISTICS)}")
    for key in ("metric",):
        if spec[key] not in metrics:
            fail(key, f"unknown observable {spec[key]!r}; allowed: observables from sim/observe.py, e.g. "
                      "or_share_cn, hf_downloads_cum_qwen")
    for key in ("start", "end"):
        try:
            parse_month(spec[key])
        except ValueError as err:
            fail(key, str(err))
        if len(spec[key]) != 7:
            fail(key, f"{spec[key]!r} must be a month written YYYY-MM")
    if parse_month(spec["end"]) < parse_month(spec["start"]):
        fail("end", f"{spec['end']} is before start {spec['start']}")
    if spec["grade"] not in GRADES:
        fail("grade", f"{spec['grade']!r} is not allowed; allowed: {', '.join(GRADES)}")
    tolerance = spec["tolerance"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        fail("tolerance", f"must be a positive number, got {tolerance!r}")
    condition = spec.get("condition", "within")
    if condition not in CONDITIONS:
        fail("condition", f"{condition!r} is not allowed; allowed: {', '.join(CONDITIONS)}")
    if stat in ("crossover", "order"):
        if "value" in spec:
            fail("value", f"not used by statistic {stat!r} (the window and tolerance say what is a hit)")
        if "condition" in spec:
            fail("condition", f"not used by statistic {stat!r}")
        # an ordering holds when the smallest log-gap between neighbours is positive
        value, condition = (0.0, "above") if stat == "order" else (float("nan"), "within")
    else:
        value = spec.get("value")
        if value is None:
            fail("value", "missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("value", f"must be a number, got {value!r}")
    scale = spec.get("scale", "linear")
    if scale not in SCALES:
        fail("scale", f"{scale!r} is not allowed; allowed: {', '.join(SCALES)}")
    if scale == "log" and (stat in ("crossover", "order") or not value > 0):
        fail("scale", "log needs a positive value (and is not used by crossover or order)")
    needs = {"ratio_mean": "denominator", "ratio_increase": "denominator", "crossover": "other",
             "order": "followed_by"}
    for key in ("denominator", "other", "followed_by"):
        if key in spec and needs.get(stat) != key:
            fail(key, f"only used by statistic {', '.join(s for s, k in needs.items() if k == key)}")
    if stat in needs and needs[stat] not in spec:
        fail(needs[stat], f"required by statistic {stat!r}")
    listed: list = []
    if stat in needs:
        key = needs[stat]
        listed = [spec[key]] if key == "other" else spec[key]
        if key == "other" and not isinstance(spec[key], str):
            fail(key, "must be the name of one observable")
        if not isinstance(listed, list) or not listed or not all(isinstance(m, str) for m in listed):
            fail(key, "must be a non-empty list of observable names")
        for name in listed:
            if name not in metrics:
                fail(key, f"unknown observable {name!r}")
    fit = spec.get("fit", True)
    if not isinstance(fit, bool):
        fail("fit", "must be true or false")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 10:
        fail("weight", f"must be a number in (0, 10], got {weight!r}")
    note = spec.get("note", "")
    if not isinstance(note, str):
        fail("note", "must be text")
    return Target(
        id=spec["id"], metric=spec["metric"], start=spec["start"], end=spec["end"], statistic=stat,
        value=float(value), tolerance=float(tolerance), population=spec["population"], source=spec["source"],
        grade=spec["grade"], condition=condition, scale=scale,
        denominator=tuple(spec.get("denominator", ())), other=spec.get("other", ""),
        followed_by=tuple(spec.get("followed_by", ())), fit=fit, weight=float(weight), note=note,
        metrics=tuple(dict.fromkeys([spec["metric"], *listed])),
    )


def load_targets(path: Path = TARGETS_TOML, missing_ok: bool = True) -> list[Target]:
    """All targets, validated; raises TargetError naming the file, target and key for anything wrong.
    A missing file gives [] when `missing_ok` (plots without calibration data)."""
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return []
        raise TargetError(path, "file", "no such targets file")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise TargetError(path, "toml", f"not valid TOML ({err})") from None
    extra = sorted(set(data) - {"target"})
    if extra:
        raise TargetError(path, extra[0], "unknown top-level key; only [[target]] tables are allowed")
    specs = data.get("target", [])
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise TargetError(path, "target", "needs at least one [[target]] table")
    metrics = _known_metrics()
    targets = [_parse(path, spec, i, metrics) for i, spec in enumerate(specs)]
    seen: set[str] = set()
    for t in targets:
        if t.id in seen:
            raise TargetError(path, f"target ({t.id}).id", "duplicate id")
        seen.add(t.id)
    return targets
