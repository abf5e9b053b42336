"""Sweep specs (TOML): what `odsim sweep` and `odsim sensitivity` run, read and checked before any run.

The format is described in sim/exploration/sweep.py's docstring (scenarios/sweeps/small.toml is a worked example). A spec is
checked with the shared input checks (sim/core/checks.py): a bad one raises InputError naming the file, the key and
what is allowed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.core import checks as check
from sim.core.calendar import month_label, parse_month
from sim.core.observe import metric_names
from sim.core.parameters import PARAMETERS, resolve
from sim.inputs.scenario import SCENARIO_DIR, Scenario, load_scenario

DESIGNS = ("grid", "lhs", "sobol", "morris", "saltelli")
TOP_KEYS = ("name", "description", "scenario", "design", "samples", "levels", "replicates", "seed", "common_seeds",
            "posterior", "months", "observables", "fixed", "parameters", "sensitivity")
AXIS_KEYS = ("low", "high", "log", "steps", "values")
ANALYSIS_KEYS = ("sensitivity",)  # sections that do not change the runs (not part of the spec's identity)
NOT_SWEPT = ("start", "end")  # they fix the months every run records
MAX_RUNS = 10_000_000


# --- the swept parameters ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One swept parameter: a range [low, high] (linear or log) or a list of values."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    steps: int | None = None
    values: tuple | None = None

    @property
    def kind(self) -> type:
        return PARAMETERS[self.name].kind

    def from_unit(self, u: np.ndarray) -> list:
        """Map coordinates in [0, 1] to parameter values (values lists: equal-width bins of the unit interval)."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.values is not None:
            index = np.minimum((u * len(self.values)).astype(int), len(self.values) - 1)
            return [self.values[i] for i in index]
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        x = np.clip(x, self.low, self.high)  # guard against rounding just outside the range
        if self.kind is int:
            return [int(v) for v in np.rint(x)]
        return [float(v) for v in x]

    def grid(self) -> list:
        """The grid design's values: the list, or `steps` values evenly spaced (in log space if `log`)."""
        if self.values is not None:
            return list(self.values)
        return list(dict.fromkeys(self.from_unit(np.linspace(0.0, 1.0, self.steps))))  # whole numbers may repeat

    def describe(self) -> dict[str, Any]:
        if self.values is not None:
            return {"values": list(self.values)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.steps is not None:
            out["steps"] = self.steps
        return out

    def arrow_type(self) -> pa.DataType:
        return {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}[self.kind]


# --- the spec ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    path: Path
    name: str
    scenario: Scenario
    design: str
    axes: tuple[Axis, ...]
    samples: int | None = None
    levels: int = 4
    replicates: int = 1
    seed: int = 0
    common_seeds: bool = True
    posterior: bool = False
    months: tuple[str, ...] = ()
    observables: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    sensitivity_outputs: tuple[tuple[str, str], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    text: str = field(default="", compare=False)

    @property
    def parameter_names(self) -> list[str]:
        return [a.name for a in self.axes]

    def problem(self) -> dict[str, Any]:
        """SALib problem on the unit cube; the spec maps unit coordinates to parameter values."""
        return {"num_vars": len(self.axes), "names": self.parameter_names, "bounds": [[0.0, 1.0]] * len(self.axes)}

    def unit_design(self) -> np.ndarray | None:
        """Design points in the unit cube (None for a grid, which is built from the values directly)."""
        d = len(self.axes)
        if self.design == "grid":
            return None
        if self.design == "lhs":
            from scipy.stats import qmc
            return qmc.LatinHypercube(d, rng=np.random.default_rng(self.seed)).random(self.samples)
        if self.design == "sobol":
            from scipy.stats import qmc
            return qmc.Sobol(d, scramble=True, rng=np.random.default_rng(self.seed)).random_base2(
                int(math.log2(self.samples)))
        if self.design == "morris":
            from SALib.sample import morris
            return morris.sample(self.problem(), self.samples, num_levels=self.levels, seed=self.seed)
        from SALib.sample import sobol
        return sobol.sample(self.problem(), self.samples, calc_second_order=False, seed=self.seed)

    def design_table(self) -> pd.DataFrame:
        """One row per design point: `point` and the value of every swept parameter."""
        if self.design == "grid":
            rows = list(itertools.product(*(a.grid() for a in self.axes)))
            table = pd.DataFrame(rows, columns=self.parameter_names)
        else:
            unit = self.unit_design()
            table = pd.DataFrame({a.name: a.from_unit(unit[:, j]) for j, a in enumerate(self.axes)})
        for axis in self.axes:
            table[axis.name] = table[axis.name].astype({int: "int64", float: "float64", bool: "bool",
                                                        str: "object"}[axis.kind])
        table.insert(0, "point", np.arange(len(table), dtype=np.int64))
        return table

    def n_points(self) -> int:
        if self.design == "grid":
            return math.prod(len(a.grid()) for a in self.axes)
        d = len(self.axes)
        return {"lhs": self.samples, "sobol": self.samples, "morris": self.samples * (d + 1),
                "saltelli": self.samples * (d + 2)}[self.design]

    def n_runs(self) -> int:
        return self.n_points() * self.replicates

    def run_seed(self, point: int, replicate: int) -> int:
        """Seed of one run, fixed by the spec alone (so identical on any executor)."""
        if self.common_seeds:
            return self.seed + replicate
        return int(np.random.SeedSequence([self.seed, point, replicate]).generate_state(1, np.uint32)[0])

    def base_kwargs(self) -> dict[str, Any]:
        """Model keyword arguments shared by every run (scenario parameters and shocks, then [fixed])."""
        return {**self.scenario.model_kwargs(), **self.fixed}

    def identity(self) -> str:
        """Hash of everything that decides the runs: the spec (less analysis sections) and the scenario files."""
        runs = {k: v for k, v in self.raw.items() if k not in ANALYSIS_KEYS and k != "description"}
        digest = hashlib.sha256(json.dumps(runs, sort_keys=True, default=str).encode())
        for file in self.scenario.files:
            digest.update(Path(file).read_bytes())
        return digest.hexdigest()[:16]

    def schema(self) -> pa.Schema:
        fields = [pa.field("run_id", pa.int64()), pa.field("point", pa.int64()), pa.field("replicate", pa.int64()),
                  pa.field("seed", pa.int64()), pa.field("month", pa.string())]
        fields += [pa.field(a.name, a.arrow_type()) for a in self.axes]
        fields += [pa.field(o, pa.float64()) for o in self.observables]
        return pa.schema(fields)


def _parse_axis(path, name, spec, design) -> Axis:
    key = f"parameters.{name}"
    if name not in PARAMETERS:
        check.fail(path, key, "unknown parameter; allowed: "
                   f"{', '.join(p for p in PARAMETERS if p not in NOT_SWEPT)}")
    if name in NOT_SWEPT:
        check.fail(path, key, "start and end cannot be swept (they fix the recorded months); set them in [fixed]")
    if not isinstance(spec, dict):
        check.fail(path, key, "must be a table: { low = ..., high = ... } or { values = [...] }")
    check.table(path, key, spec, AXIS_KEYS)
    kind = PARAMETERS[name].kind
    if "values" in spec:
        extra = sorted(set(spec) & {"low", "high", "log", "steps"})
        if extra:
            check.fail(path, f"{key}.{extra[0]}", "give either values or a range (low, high), not both")
        values = spec["values"]
        if not isinstance(values, list) or not values:
            check.fail(path, f"{key}.values", f"empty: give a non-empty list of values, got {values!r}")
        checked = [check.parameter(path, f"{key}.values", name, value) for value in values]
        if len(set(checked)) != len(checked):
            check.fail(path, f"{key}.values", "lists a value twice")
        return Axis(name, values=tuple(checked))
    if kind not in (int, float):
        check.fail(path, key, f"{name} is not a number: list its values as {{ values = [...] }}")
    if "low" not in spec or "high" not in spec:
        check.fail(path, key, "a range needs both low and high (or give values = [...])")
    low, high = (check.parameter(path, key, name, spec[end]) for end in ("low", "high"))
    if not low < high:
        check.fail(path, key, f"empty range: low ({low}) must be below high ({high})")
    log = check.flag(path, f"{key}.log", spec.get("log", False))
    if log and low <= 0:
        check.fail(path, f"{key}.log", f"a log range needs low > 0, got {low}")
    steps = spec.get("steps")
    if design == "grid":
        if steps is None:
            check.fail(path, f"{key}.steps", "the grid design needs steps (number of values, at least 2) for a range")
        steps = check.whole(path, f"{key}.steps", steps, 2)
        if kind is int and steps > high - low + 1:
            check.fail(path, f"{key}.steps", f"at most {high - low + 1} distinct whole numbers in [{low}, {high}]")
    elif steps is not None:
        check.fail(path, f"{key}.steps", f"only the grid design uses steps; design {design!r} samples the range")
    return Axis(name, low=low, high=high, log=log, steps=steps)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; raises InputError (file, key, what is allowed) before anything runs."""
    path = Path(path)
    raw = check.table(path, "", check.read_toml(path, "sweep spec", "a name, a design and [parameters]"), TOP_KEYS)
    text = path.read_text()
    name = check.folder_name(path, "name", raw.get("name"))
    description = check.text(path, "description", raw.get("description", ""))
    scenario = load_scenario(_scenario_path(path, raw.get("scenario")))  # a bad scenario names its own file
    design = raw.get("design")
    if design not in DESIGNS:
        check.fail(path, "design", f"unknown design {design!r}; allowed: {', '.join(DESIGNS)}")
    samples, levels = _design_size(path, raw, design)
    replicates = check.whole(path, "replicates", raw.get("replicates", 1), 1)
    seed = check.whole(path, "seed", raw.get("seed", 0), 0)
    common_seeds = check.flag(path, "common_seeds", raw.get("common_seeds", True))
    posterior = check.flag(path, "posterior", raw.get("posterior", False))
    if posterior:
        from sim.inputs.posterior import load_posterior
        if load_posterior() is None:
            check.fail(path, "posterior", "true needs calibration/posterior.csv, which does not exist; run "
                       "calibration first or set posterior = false")

    fixed_spec = raw.get("fixed", {})
    if not isinstance(fixed_spec, dict):
        check.fail(path, "fixed", "must be a table of parameter = value")
    fixed = {key: check.parameter(path, f"fixed.{key}", key, value) for key, value in fixed_spec.items()}
    try:
        base = resolve({**scenario.parameters, **fixed})
    except (KeyError, ValueError) as err:
        check.fail(path, "fixed", str(err))

    axes_spec = raw.get("parameters")
    if not isinstance(axes_spec, dict) or not axes_spec:
        check.fail(path, "parameters", "required: a table naming at least one parameter to sweep")
    axes = []
    for name_, spec in axes_spec.items():
        if name_ in fixed:
            check.fail(path, f"parameters.{name_}", "also set in [fixed]; a parameter is either fixed or swept")
        axes.append(_parse_axis(path, name_, spec, design))
    months = _months(path, raw, base)
    observables = check.names(path, "observables", raw.get("observables", metric_names()), metric_names(),
                              what="observable", unique=True)
    outputs = _sensitivity_outputs(path, raw, observables, months)

    spec = SweepSpec(
        path=path, name=name, scenario=scenario, design=design, axes=tuple(axes), samples=samples, levels=levels,
        replicates=replicates, seed=seed, common_seeds=common_seeds, posterior=posterior, months=tuple(months),
        observables=tuple(observables), fixed=fixed, description=description, sensitivity_outputs=tuple(outputs),
        raw=raw, text=text,
    )
    if spec.n_runs() > MAX_RUNS:
        check.fail(path, "parameters", f"{spec.n_runs():,} runs; at most {MAX_RUNS:,} (fewer steps, samples or "
                   "replicates)")
    for axis in axes:  # every combination must resolve (e.g. a swept n_agents with everything else)
        probe = axis.values[0] if axis.values else axis.low
        try:
            resolve({**scenario.parameters, **fixed, axis.name: probe})
        except (KeyError, ValueError) as err:
            check.fail(path, f"parameters.{axis.name}", str(err))
    return spec


def _scenario_path(path: Path, scenario_file: Any) -> Path:
    if scenario_file is None:
        return SCENARIO_DIR / "baseline.toml"
    check.text(path, "scenario", scenario_file, required=True)
    scenario_path = (path.parent / scenario_file).resolve()
    if not scenario_path.is_file():
        check.fail(path, "scenario", f"no such scenario file: {scenario_path}")
    return scenario_path


def _design_size(path: Path, raw: dict, design: str) -> tuple[int | None, int]:
    """`samples` and `levels`, each only where the design uses it."""
    samples = raw.get("samples")
    if design == "grid":
        if samples is not None:
            check.fail(path, "samples", "the grid design takes its size from the parameters' steps and values")
    else:
        if samples is None:
            check.fail(path, "samples", f"required for design {design!r}")
        samples = check.whole(path, "samples", samples, 2 if design == "lhs" else 1)
        if design in ("sobol", "saltelli") and samples & (samples - 1):
            check.fail(path, "samples", f"design {design!r} needs a power of 2 (keeps the Sobol sequence "
                       f"balanced), got {samples}")
    if "levels" in raw and design != "morris":
        check.fail(path, "levels", "only the morris design uses levels")
    levels = check.whole(path, "levels", raw.get("levels", 4), 2)
    if levels % 2:
        check.fail(path, "levels", f"must be even (Morris design), got {levels}")
    return samples, levels


def _months(path: Path, raw: dict, base: dict) -> list[str]:
    """The kept months: simulated months written YYYY-MM, each once, sorted."""
    first, last = base["start"], base["end"]
    all_months = [month_label(m) for m in range(parse_month(first), parse_month(last) + 1)]
    months = check.texts(path, "months", raw.get("months", all_months), what="months like \"2030-12\"",
                         nonempty=True)
    for label in months:
        try:
            check.month(path, "months", label, first, last)
        except check.InputError:
            check.fail(path, "months", f"{label!r} is not a simulated month; allowed: {first} to {last} written "
                       "YYYY-MM")
    if len(set(months)) != len(months):
        check.fail(path, "months", "lists a month twice")
    return sorted(months)


def _sensitivity_outputs(path: Path, raw: dict, observables: list[str], months: list[str]) -> list[tuple[str, str]]:
    analysis = check.table(path, "sensitivity", raw.get("sensitivity", {}), ("outputs",))
    outputs_spec = check.texts(path, "sensitivity.outputs", analysis.get(
        "outputs", [f"{o}@{months[-1]}" for o in observables]), what="outputs like \"or_share_cn@2030-12\"",
        nonempty=True)
    outputs = []
    for item in outputs_spec:
        obs, _, month = item.partition("@")
        if obs not in observables or month not in months:
            check.fail(path, "sensitivity.outputs", f"{item!r}: write observable@month with a kept observable "
                       f"({', '.join(observables)}) and a kept month ({', '.join(months)})")
        outputs.append((obs, month))
    return outputs
