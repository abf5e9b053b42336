"""Parameter sweeps: a TOML spec, a design, many runs on local processes or a Dask cluster, one Parquet table.

A spec (scenarios/sweeps/small.toml is a worked example):

    name = "small"                     # names the output folder results/sweeps/<name>/
    description = "..."                # optional
    scenario = "../baseline.toml"      # the scenario every run starts from (its shocks apply); path relative to
                                       # this file; default scenarios/baseline.toml
    design = "lhs"                     # grid | lhs | sobol | morris | saltelli
    samples = 16                       # lhs: points; sobol: points (a power of 2); morris: trajectories;
                                       # saltelli: base samples N (a power of 2); not used by grid
    levels = 4                         # morris only: grid levels (even, default 4)
    replicates = 2                     # runs (seeds) per design point
    seed = 0                           # seeds the design and the runs
    common_seeds = true                # replicate r of every point runs with seed `seed + r` (default); false:
                                       # each run gets its own seed derived from (seed, point, replicate)
    posterior = false                  # true: replicate r starts from calibration posterior draw r
    months = ["2027-12", "2030-12"]    # months to keep (default: every month)
    observables = ["or_share_cn"]      # observables to keep (default: all, sim.observe.metric_names())

    [fixed]                            # parameters set for every run (override the scenario's)
    n_agents = 1500

    [parameters]                       # the swept parameters (override the scenario and [fixed])
    cn_lag_months = { low = 0, high = 24 }            # a range (grid needs `steps`)
    price_sensitivity = { low = 0.1, high = 2, log = true, steps = 3 }
    network = { values = ["clustered", "complete"] }  # a list of values

    [sensitivity]                      # read by `odsim sensitivity` only
    outputs = ["or_share_cn@2030-12"]  # observable@month (default: every kept observable at the last kept month)

Precedence for a run's parameters: defaults < posterior draw (if `posterior = true`) < scenario < [fixed] <
swept values. Scenario shocks still apply, so a shock that sets a swept parameter overrides it from its date on.
Posterior draws are off by default so that a sweep explores exactly the ranges it names.

Every run has a run id (point * replicates + replicate) and a seed fixed by the spec, so the table is the same
whatever the executor or the number of workers. Finished runs are appended to `parts/` as Parquet files written
to a temporary name and renamed (a file under its final name is always complete); a restarted sweep skips run
ids already on disk. When every run is done the parts are merged, sorted by run id and month, into
`results.parquet`. The folder also holds `spec.toml` (a copy), `design.parquet` (the design points) and
`manifest.json`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import time
import tomllib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

try:
    import fcntl  # folder lock; not on Windows, where two sweeps must simply not share a folder
except ImportError:  # pragma: no cover
    fcntl = None

from sim.calendar import month_label, parse_month
from sim.observe import metric_names
from sim.parameters import PARAMETERS, check_value, resolve
from sim.scenario import SCENARIO_DIR, Scenario, ScenarioError, load_scenario

DESIGNS = ("grid", "lhs", "sobol", "morris", "saltelli")
TOP_KEYS = ("name", "description", "scenario", "design", "samples", "levels", "replicates", "seed", "common_seeds",
            "posterior", "months", "observables", "fixed", "parameters", "sensitivity")
AXIS_KEYS = ("low", "high", "log", "steps", "values")
ANALYSIS_KEYS = ("sensitivity",)  # sections that do not change the runs (not part of the spec's identity)
NOT_SWEPT = ("start", "end")  # they fix the months every run records
MAX_RUNS = 10_000_000
RESULTS_ROOT = Path("results") / "sweeps"
ID_COLUMNS = ("run_id", "point", "replicate", "seed", "month")
MAX_BUFFER_ROWS = 20_000  # finished rows held in memory before they are written out
MERGE_ROWS = 200_000  # rows sorted in memory at a time when merging the parts


class SpecError(ScenarioError):
    """A sweep spec is invalid (or does not match its output folder): names the file, the key and what is
    allowed. A ScenarioError subclass so the command line reports it the same way: one line, exit 2."""


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


def _fail(path, key, message):
    raise SpecError(path, key, message)


def _number(path, key, value, *, low=None, whole=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and int(value) != value):
        _fail(path, key, f"must be a {'whole ' if whole else ''}number, got {value!r}")
    if low is not None and value < low:
        _fail(path, key, f"must be at least {low}, got {value!r}")
    return int(value) if whole else value


def _parse_axis(path, name, spec, design) -> Axis:
    key = f"parameters.{name}"
    if name not in PARAMETERS:
        _fail(path, key, f"unknown parameter; allowed: {', '.join(p for p in PARAMETERS if p not in NOT_SWEPT)}")
    if name in NOT_SWEPT:
        _fail(path, key, "start and end cannot be swept (they fix the recorded months); set them in [fixed]")
    if not isinstance(spec, dict):
        _fail(path, key, "must be a table: { low = ..., high = ... } or { values = [...] }")
    unknown = sorted(set(spec) - set(AXIS_KEYS))
    if unknown:
        _fail(path, f"{key}.{unknown[0]}", f"unknown key; allowed: {', '.join(AXIS_KEYS)}")
    kind = PARAMETERS[name].kind
    if "values" in spec:
        extra = sorted(set(spec) & {"low", "high", "log", "steps"})
        if extra:
            _fail(path, f"{key}.{extra[0]}", "give either values or a range (low, high), not both")
        values = spec["values"]
        if not isinstance(values, list) or not values:
            _fail(path, f"{key}.values", "empty: give a non-empty list of values")
        checked = []
        for value in values:
            try:
                checked.append(check_value(name, value))
            except ValueError as err:
                _fail(path, f"{key}.values", str(err))
        if len(set(checked)) != len(checked):
            _fail(path, f"{key}.values", "lists a value twice")
        return Axis(name, values=tuple(checked))
    if kind not in (int, float):
        _fail(path, key, f"{name} is not a number: list its values as {{ values = [...] }}")
    if "low" not in spec or "high" not in spec:
        _fail(path, key, "a range needs both low and high (or give values = [...])")
    try:
        low, high = check_value(name, spec["low"]), check_value(name, spec["high"])
    except ValueError as err:
        _fail(path, key, str(err))
    if not low < high:
        _fail(path, key, f"empty range: low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        _fail(path, f"{key}.log", "must be true or false")
    if log and low <= 0:
        _fail(path, f"{key}.log", f"a log range needs low > 0, got {low}")
    steps = spec.get("steps")
    if design == "grid":
        if steps is None:
            _fail(path, f"{key}.steps", "the grid design needs steps (number of values, at least 2) for a range")
        steps = _number(path, f"{key}.steps", steps, low=2, whole=True)
        if kind is int and steps > high - low + 1:
            _fail(path, f"{key}.steps", f"at most {high - low + 1} distinct whole numbers in [{low}, {high}]")
    elif steps is not None:
        _fail(path, f"{key}.steps", f"only the grid design uses steps; design {design!r} samples the range")
    return Axis(name, low=low, high=high, log=log, steps=steps)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; raises SpecError (file, key, what is allowed) before anything runs."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "file", "no such sweep spec")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        _fail(path, "toml", f"not valid TOML ({err})")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        _fail(path, unknown[0], f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        _fail(path, "name", "required; letters, digits, '_' or '-' (it names the output folder)")
    description = raw.get("description", "")
    if not isinstance(description, str):
        _fail(path, "description", "must be text")

    scenario_file = raw.get("scenario")
    if scenario_file is None:
        scenario_path = SCENARIO_DIR / "baseline.toml"
    elif not isinstance(scenario_file, str):
        _fail(path, "scenario", "must be the path of a scenario file (relative to this spec)")
    else:
        scenario_path = (path.parent / scenario_file).resolve()
        if not scenario_path.is_file():
            _fail(path, "scenario", f"no such scenario file: {scenario_path}")
    scenario = load_scenario(scenario_path)  # a bad scenario raises ScenarioError naming that file

    design = raw.get("design")
    if design not in DESIGNS:
        _fail(path, "design", f"unknown design {design!r}; allowed: {', '.join(DESIGNS)}")
    samples = raw.get("samples")
    if design == "grid":
        if samples is not None:
            _fail(path, "samples", "the grid design takes its size from the parameters' steps and values")
    else:
        if samples is None:
            _fail(path, "samples", f"required for design {design!r}")
        samples = _number(path, "samples", samples, low=2 if design == "lhs" else 1, whole=True)
        if design in ("sobol", "saltelli") and samples & (samples - 1):
            _fail(path, "samples", f"design {design!r} needs a power of 2 (keeps the Sobol sequence balanced), "
                  f"got {samples}")
    levels = raw.get("levels", 4)
    if "levels" in raw and design != "morris":
        _fail(path, "levels", "only the morris design uses levels")
    levels = _number(path, "levels", levels, low=2, whole=True)
    if levels % 2:
        _fail(path, "levels", f"must be even (Morris design), got {levels}")
    replicates = _number(path, "replicates", raw.get("replicates", 1), low=1, whole=True)
    seed = _number(path, "seed", raw.get("seed", 0), low=0, whole=True)
    for key in ("common_seeds", "posterior"):
        if not isinstance(raw.get(key, False), bool):
            _fail(path, key, "must be true or false")
    common_seeds = raw.get("common_seeds", True)
    posterior = raw.get("posterior", False)
    if posterior:
        from sim.posterior import load_posterior
        if load_posterior() is None:
            _fail(path, "posterior", "true needs calibration/posterior.csv, which does not exist; run calibration "
                  "first or set posterior = false")

    fixed_spec = raw.get("fixed", {})
    if not isinstance(fixed_spec, dict):
        _fail(path, "fixed", "must be a table of parameter = value")
    fixed = {}
    for key, value in fixed_spec.items():
        if key not in PARAMETERS:
            _fail(path, f"fixed.{key}", f"unknown parameter; allowed: {', '.join(PARAMETERS)}")
        try:
            fixed[key] = check_value(key, value)
        except ValueError as err:
            _fail(path, f"fixed.{key}", str(err))
    try:
        base = resolve({**scenario.parameters, **fixed})
    except (KeyError, ValueError) as err:
        _fail(path, "fixed", str(err))

    axes_spec = raw.get("parameters")
    if not isinstance(axes_spec, dict) or not axes_spec:
        _fail(path, "parameters", "required: a table naming at least one parameter to sweep")
    axes = []
    for name_, spec in axes_spec.items():
        if name_ in fixed:
            _fail(path, f"parameters.{name_}", "also set in [fixed]; a parameter is either fixed or swept")
        axes.append(_parse_axis(path, name_, spec, design))
    all_months = [month_label(m) for m in range(parse_month(base["start"]), parse_month(base["end"]) + 1)]
    months = raw.get("months", all_months)
    if not isinstance(months, list) or not months or not all(isinstance(m, str) for m in months):
        _fail(path, "months", "must be a non-empty list of months like \"2030-12\"")
    for month in months:
        try:
            label = month_label(parse_month(month))
        except ValueError as err:
            _fail(path, "months", str(err))
        if label != month or month not in all_months:
            _fail(path, "months", f"{month!r} is not a simulated month; allowed: {all_months[0]} to {all_months[-1]}"
                  " written YYYY-MM")
    if len(set(months)) != len(months):
        _fail(path, "months", "lists a month twice")
    months = sorted(months)

    allowed_obs = metric_names()
    observables = raw.get("observables", allowed_obs)
    if not isinstance(observables, list) or not observables:
        _fail(path, "observables", "must be a non-empty list of observable names")
    for obs in observables:
        if obs not in allowed_obs:
            _fail(path, "observables", f"unknown observable {obs!r}; allowed: {', '.join(allowed_obs)}")
    if len(set(observables)) != len(observables):
        _fail(path, "observables", "lists an observable twice")

    analysis = raw.get("sensitivity", {})
    if not isinstance(analysis, dict):
        _fail(path, "sensitivity", "must be a table with key outputs")
    for key in sorted(set(analysis) - {"outputs"}):
        _fail(path, f"sensitivity.{key}", "unknown key; allowed: outputs")
    outputs_spec = analysis.get("outputs", [f"{o}@{months[-1]}" for o in observables])
    if not isinstance(outputs_spec, list) or not outputs_spec:
        _fail(path, "sensitivity.outputs", "must be a non-empty list like [\"or_share_cn@2030-12\"]")
    outputs = []
    for item in outputs_spec:
        obs, _, month = str(item).partition("@")
        if obs not in observables or month not in months:
            _fail(path, "sensitivity.outputs", f"{item!r}: write observable@month with a kept observable "
                  f"({', '.join(observables)}) and a kept month ({', '.join(months)})")
        outputs.append((obs, month))

    spec = SweepSpec(
        path=path, name=name, scenario=scenario, design=design, axes=tuple(axes), samples=samples, levels=levels,
        replicates=replicates, seed=seed, common_seeds=common_seeds, posterior=posterior, months=tuple(months),
        observables=tuple(observables), fixed=fixed, description=description, sensitivity_outputs=tuple(outputs),
        raw=raw, text=text,
    )
    if spec.n_runs() > MAX_RUNS:
        _fail(path, "parameters", f"{spec.n_runs():,} runs; at most {MAX_RUNS:,} (fewer steps, samples or "
              "replicates)")
    for axis in axes:  # every combination must resolve (e.g. a swept n_agents with everything else)
        probe = axis.values[0] if axis.values else axis.low
        try:
            resolve({**scenario.parameters, **fixed, axis.name: probe})
        except (KeyError, ValueError) as err:
            _fail(path, f"parameters.{axis.name}", str(err))
    return spec


# --- one run -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    run_id: int
    point: int
    replicate: int
    seed: int
    kwargs: dict[str, Any]  # the model's keyword arguments (parameters and shocks)
    values: dict[str, Any]  # the swept parameters' values (recorded in the table)
    months: tuple[str, ...]
    observables: tuple[str, ...]


def run_task(task: Task) -> pd.DataFrame:
    """Run one model and return its rows: one per kept month, ids, swept values and kept observables.
    Module-level and free of globals so process pools and Dask workers can run it."""
    from sim.runner import run_member

    frame = run_member(task.kwargs, task.seed).loc[list(task.months), list(task.observables)]
    out = pd.DataFrame({"run_id": task.run_id, "point": task.point, "replicate": task.replicate,
                        "seed": task.seed, "month": list(task.months)})
    for name, value in task.values.items():
        out[name] = value
    for name in task.observables:
        out[name] = frame[name].to_numpy(dtype=float)
    return out


def tasks(spec: SweepSpec, design: pd.DataFrame, skip: set[int] = frozenset()) -> Iterator[Task]:
    """The spec's runs in run-id order, leaving out run ids in `skip`; generated lazily."""
    base = spec.base_kwargs()
    draw = None
    if spec.posterior:
        from sim.posterior import parameter_sets
        draw = parameter_sets()
    names = spec.parameter_names
    for row in design.itertuples(index=False):
        point = int(row.point)
        values = {n: getattr(row, n) for n in names}
        values = {n: (v.item() if isinstance(v, np.generic) else v) for n, v in values.items()}
        for r in range(spec.replicates):
            run_id = point * spec.replicates + r
            if run_id in skip:
                continue
            kwargs = {**(draw(r) if draw else {}), **base, **values}
            yield Task(run_id, point, r, spec.run_seed(point, r), kwargs, values, spec.months, spec.observables)


# --- executors ---------------------------------------------------------------------------------------------
def local_executor(workers: int | None = None) -> Callable[[Iterable[Task]], Iterator[pd.DataFrame]]:
    """Run tasks in `workers` local processes (1: in this process), keeping a bounded number in flight so
    memory does not grow with the sweep."""
    from sim.runner import default_workers

    workers = workers or default_workers()

    def execute(todo: Iterable[Task]) -> Iterator[pd.DataFrame]:
        if workers == 1:
            for task in todo:
                yield run_task(task)
            return
        # forkserver: the driver runs Arrow's threads, and forking a threaded process can deadlock; the server
        # imports the model once so workers start quickly.
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["sim.sweep", "sim.runner"])
        else:
            context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: set = set()
            try:
                for task in todo:
                    pending.add(pool.submit(run_task, task))
                    if len(pending) >= 4 * workers:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            yield future.result()
                for future in _drain(pending):
                    yield future.result()
            finally:
                for future in pending:
                    future.cancel()

    execute.description = f"local, {workers} worker process{'es' if workers > 1 else ''}"
    return execute


def _drain(pending: set) -> Iterator:
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from done


def dask_executor(address: str, timeout: float = 10.0) -> Callable[[Iterable[Task]], Iterator[pd.DataFrame]]:
    """Send tasks to a Dask distributed scheduler. Connects at once so a wrong address fails before any run;
    workers need the same odsim installed. A bounded window of tasks is in flight at a time."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {err}") from None

    def execute(todo: Iterable[Task]) -> Iterator[pd.DataFrame]:
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        window = max(8, 4 * sum(w.get("nthreads", 1) for w in workers))
        todo = iter(todo)
        try:
            first = [client.submit(run_task, task, pure=False) for task in itertools.islice(todo, window)]
            if not first:
                return
            queue = as_completed(first, loop=client.loop)
            for future in queue:
                result = future.result()
                future.release()
                yield result
                nxt = next(todo, None)
                if nxt is not None:
                    queue.add(client.submit(run_task, nxt, pure=False))
        finally:
            client.close()

    execute.description = f"Dask scheduler {address}"
    return execute


# --- the output folder -------------------------------------------------------------------------------------
def default_folder(spec: SweepSpec) -> Path:
    return RESULTS_ROOT / spec.name


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """write(tmp) then rename onto `path`: a file under its final name is always complete."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def part_files(folder: Path) -> list[Path]:
    parts = folder / "parts"
    return sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []


def done_run_ids(folder: Path) -> set[int]:
    """Run ids already on disk (complete part files only: temporary files are never read)."""
    done: set[int] = set()
    for part in part_files(folder):
        done.update(pq.read_table(part, columns=["run_id"]).column("run_id").to_pylist())
    return done


def read_manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def read_results(folder: str | Path, columns: list[str] | None = None, months: list[str] | None = None
                 ) -> pd.DataFrame:
    """The sweep's table (complete, or the runs finished so far), optionally only some columns and months."""
    folder = Path(folder)
    final = folder / "results.parquet"
    sources = [final] if final.is_file() else part_files(folder)
    if not sources:
        raise FileNotFoundError(f"{folder}: no sweep results (run `odsim sweep` first)")
    dataset = ds.dataset([str(s) for s in sources], format="parquet")
    table = dataset.to_table(columns=columns,
                             filter=ds.field("month").isin(months) if months is not None else None)
    frame = table.to_pandas()
    keys = [k for k in ("run_id", "month") if k in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame


class _Lock:
    """Exclusive lock on the folder so two sweeps never write the same parts (released by the OS on kill)."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"

    def __enter__(self):
        self.fh = open(self.path, "w")
        if fcntl is None:
            return self
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise SpecError(self.path.parent, "folder", "another sweep is writing here; wait for it or use "
                            "--out") from None
        return self

    def __exit__(self, *exc):
        if fcntl is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


class _PartWriter:
    """Buffers finished runs and writes them as one part file every `every` seconds, when the buffer reaches
    MAX_BUFFER_ROWS (memory stays bounded however fast runs finish), and on close."""

    def __init__(self, folder: Path, schema: pa.Schema, every: float):
        self.dir = folder / "parts"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.schema, self.every = schema, every
        self.buffer: list[pd.DataFrame] = []
        self.rows = 0
        self.last = time.monotonic()

    def add(self, frame: pd.DataFrame) -> None:
        self.buffer.append(frame)
        self.rows += len(frame)
        if time.monotonic() - self.last >= self.every or self.rows >= MAX_BUFFER_ROWS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.buffer:
            return
        # Take the buffer before writing: if an interrupt lands after the rename, the runs are not written twice
        # (if it lands before, they are simply computed again on resume).
        frames, self.buffer, self.rows = self.buffer, [], 0
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), schema=self.schema,
                                     preserve_index=False)
        first = int(table.column("run_id")[0].as_py())
        name = f"part-{first:09d}-{time.time_ns()}-{os.getpid()}.parquet"
        _atomic_write(self.dir / name, lambda tmp: pq.write_table(table, tmp))


def _merge(folder: Path, spec: SweepSpec) -> None:
    """Merge the parts into results.parquet sorted by run id and month, a slice of run ids at a time (memory
    stays bounded), check that every run is there exactly once, then remove the parts."""
    schema = spec.schema()
    parts = part_files(folder)
    dataset = ds.dataset([str(p) for p in parts], format="parquet", schema=schema)
    n_runs, n_months = spec.n_runs(), len(spec.months)
    chunk = max(1, MERGE_ROWS // n_months)
    target = folder / "results.parquet"

    def write(tmp: Path) -> None:
        rows = 0
        with pq.ParquetWriter(tmp, schema) as writer:
            for low in range(0, n_runs, chunk):
                run_id = ds.field("run_id")
                table = dataset.to_table(filter=(run_id >= low) & (run_id < low + chunk))
                table = table.sort_by([("run_id", "ascending"), ("month", "ascending")])
                keys = table.select(["run_id", "month"]).to_pandas()
                repeated = keys.duplicated().to_numpy()
                if repeated.any():  # runs are deterministic, so a repeated row is an exact copy: keep one
                    table = table.filter(pa.array(~repeated))
                expected = min(chunk, n_runs - low) * n_months
                ids = table.column("run_id").to_numpy()
                if table.num_rows != expected or len(np.unique(ids)) * n_months != expected:
                    raise RuntimeError(f"{folder}: runs {low}-{low + chunk - 1} have {table.num_rows} rows, "
                                       f"expected {expected}; the parts are inconsistent")
                writer.write_table(table)
                rows += table.num_rows
        assert rows == n_runs * n_months

    _atomic_write(target, write)
    shutil.rmtree(folder / "parts", ignore_errors=True)


def _versions() -> dict[str, str]:
    import platform
    import subprocess
    from importlib import metadata

    out = {"python": platform.python_version()}
    for package in ("odsim", "mesa", "numpy", "scipy", "pandas", "pyarrow", "dask", "distributed", "SALib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        out["git_commit"] = git.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = "unknown"
    return out


def _manifest(spec: SweepSpec, status: str, runs_done: int, extra: dict) -> dict:
    return {
        "name": spec.name,
        "description": spec.description,
        "spec_file": str(spec.path),
        "identity": spec.identity(),
        "status": status,
        "design": spec.design,
        "samples": spec.samples,
        "levels": spec.levels if spec.design == "morris" else None,
        "points": spec.n_points(),
        "replicates": spec.replicates,
        "runs": spec.n_runs(),
        "runs_done": runs_done,
        "seeds": (f"replicate r of every point uses seed {spec.seed} + r (common random numbers)"
                  if spec.common_seeds else f"SeedSequence([{spec.seed}, point, replicate])"),
        "posterior": spec.posterior,
        "scenario": spec.scenario.name,
        "scenario_files": list(spec.scenario.files),
        "shocks": [s.describe() for s in spec.scenario.shocks],
        "fixed": spec.fixed,
        "parameters": {a.name: a.describe() for a in spec.axes},
        "base_parameters": resolve({**spec.scenario.parameters, **spec.fixed}),
        "months": list(spec.months),
        "observables": list(spec.observables),
        "table": "results.parquet: one row per run and kept month; columns " + ", ".join(ID_COLUMNS)
                 + ", the swept parameters, the observables",
        **extra,
    }


@dataclass
class SweepResult:
    folder: Path
    runs: int
    computed: int  # runs computed in this session
    seconds: float

    @property
    def table(self) -> Path:
        return self.folder / "results.parquet"


def prepare(spec: SweepSpec, folder: Path) -> None:
    """Refuse a folder that holds another spec's runs (before anything is written)."""
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("identity") != spec.identity():
        raise SpecError(spec.path, "name", f"{folder} holds results of a different spec (identity "
                        f"{manifest.get('identity')}, this one {spec.identity()}); delete that folder or use --out")
    if manifest is None and folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir()):
        raise SpecError(spec.path, "name", f"{folder} exists and is not a sweep folder; use --out")


def run_sweep(spec: SweepSpec, folder: Path | None = None, executor=None, progress: bool = True,
              checkpoint_seconds: float = 5.0) -> SweepResult:
    """Run the missing runs of `spec` into `folder` and merge the table; resumable at any moment."""
    folder = Path(folder) if folder is not None else default_folder(spec)
    prepare(spec, folder)
    executor = executor or local_executor()
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    with _Lock(folder):
        for stale in list(folder.glob(".*.tmp-*")) + list((folder / "parts").glob(".*.tmp-*")):
            stale.unlink(missing_ok=True)  # left by a killed session; never complete
        extra = {"executor": getattr(executor, "description", "custom"), "versions": _versions(),
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

        def write_manifest(status: str, runs_done: int) -> None:
            text = json.dumps(_manifest(spec, status, runs_done, extra), indent=2, default=str) + "\n"
            _write_text(folder / "manifest.json", text)

        if (folder / "results.parquet").is_file():  # complete (it is only written once every run is done)
            shutil.rmtree(folder / "parts", ignore_errors=True)  # leftovers of a merge killed before cleanup
            if (read_manifest(folder) or {}).get("status") != "complete":
                write_manifest("complete", spec.n_runs())
            return SweepResult(folder, spec.n_runs(), 0, time.monotonic() - started)
        done = done_run_ids(folder)
        # The manifest first: it marks the folder as this spec's, so a session killed at any later point resumes.
        write_manifest("running", len(done))
        _write_text(folder / "spec.toml", spec.text)
        design_path = folder / "design.parquet"
        design = spec.design_table()
        if design_path.is_file():
            if pd.read_parquet(design_path).to_dict("list") != design.to_dict("list"):
                raise SpecError(spec.path, "design", f"{design_path} differs from the design this spec generates "
                                "now (another SciPy/SALib version?); delete the folder to start again")
        else:
            _atomic_write(design_path, lambda tmp: design.to_parquet(tmp, index=False))
        writer = _PartWriter(folder, spec.schema(), checkpoint_seconds)
        bar = tqdm(total=spec.n_runs(), initial=len(done), desc=spec.name, unit="run", disable=not progress,
                   dynamic_ncols=True, smoothing=0.1)
        computed = 0
        try:
            for frame in executor(tasks(spec, design, done)):
                writer.add(frame)
                computed += 1
                bar.update()
        finally:
            writer.flush()  # keep every finished run, also on Ctrl-C or an error
            bar.close()
        _merge(folder, spec)
        extra["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        extra["seconds_this_session"] = round(time.monotonic() - started, 1)
        write_manifest("complete", spec.n_runs())
    return SweepResult(folder, spec.n_runs(), computed, time.monotonic() - started)


def make_executor(workers: int | None = None, scheduler: str | None = None, connect_timeout: float = 10.0):
    if scheduler:
        return dask_executor(scheduler, connect_timeout)
    return local_executor(workers)
