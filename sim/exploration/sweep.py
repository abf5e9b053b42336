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
    observables = ["or_share_cn"]      # observables to keep (default: all, sim.core.observe.metric_names())

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

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm import tqdm

from sim.core.checks import InputError
from sim.running.executor import Executor
from sim.core.parameters import resolve
from sim.running.store import FolderLock, atomic_write, remove_stale, software_provenance, write_text
from sim.inputs.sweep_spec import SweepSpec

RESULTS_ROOT = Path("results") / "sweeps"
ID_COLUMNS = ("run_id", "point", "replicate", "seed", "month")
MAX_BUFFER_ROWS = 20_000  # finished rows held in memory before they are written out
MERGE_ROWS = 200_000  # rows sorted in memory at a time when merging the parts


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
    from sim.running.runner import run_member

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
        from sim.inputs.posterior import parameter_sets
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


# --- the output folder -------------------------------------------------------------------------------------
def default_folder(spec: SweepSpec) -> Path:
    return RESULTS_ROOT / spec.name


def _lock(folder: Path) -> FolderLock:
    """Two sweeps never write the same parts: the second is refused (as a SpecError: one line, exit 2)."""
    return FolderLock(folder / ".lock", str(folder))


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
        atomic_write(self.dir / name, lambda tmp: pq.write_table(table, tmp))


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

    atomic_write(target, write)
    shutil.rmtree(folder / "parts", ignore_errors=True)


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
        raise InputError(spec.path, "name", f"{folder} holds results of a different spec (identity "
                        f"{manifest.get('identity')}, this one {spec.identity()}); delete that folder or use --out")
    if manifest is None and folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir()):
        raise InputError(spec.path, "name", f"{folder} exists and is not a sweep folder; use --out")


def run_sweep(spec: SweepSpec, folder: Path | None = None, executor: Executor | None = None, progress: bool = True,
              checkpoint_seconds: float = 5.0) -> SweepResult:
    """Run the missing runs of `spec` into `folder` with `executor` (default: every local core) and merge the
    table; resumable at any moment."""
    if executor is None:
        with Executor() as own:
            return run_sweep(spec, folder, own, progress, checkpoint_seconds)
    folder = Path(folder) if folder is not None else default_folder(spec)
    prepare(spec, folder)
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder):
        for stale in (folder, folder / "parts"):
            remove_stale(stale)  # left by a killed session; never complete
        extra = {"executor": executor.description, **software_provenance(),
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

        def write_manifest(status: str, runs_done: int) -> None:
            text = json.dumps(_manifest(spec, status, runs_done, extra), indent=2, default=str) + "\n"
            write_text(folder / "manifest.json", text)

        if (folder / "results.parquet").is_file():  # complete (it is only written once every run is done)
            shutil.rmtree(folder / "parts", ignore_errors=True)  # leftovers of a merge killed before cleanup
            if (read_manifest(folder) or {}).get("status") != "complete":
                write_manifest("complete", spec.n_runs())
            return SweepResult(folder, spec.n_runs(), 0, time.monotonic() - started)
        done = done_run_ids(folder)
        # The manifest first: it marks the folder as this spec's, so a session killed at any later point resumes.
        write_manifest("running", len(done))
        write_text(folder / "spec.toml", spec.text)
        design_path = folder / "design.parquet"
        design = spec.design_table()
        if design_path.is_file():
            if pd.read_parquet(design_path).to_dict("list") != design.to_dict("list"):
                raise InputError(spec.path, "design", f"{design_path} differs from the design this spec generates "
                                "now (another SciPy/SALib version?); delete the folder to start again")
        else:
            atomic_write(design_path, lambda tmp: design.to_parquet(tmp, index=False))
        writer = _PartWriter(folder, spec.schema(), checkpoint_seconds)
        bar = tqdm(total=spec.n_runs(), initial=len(done), desc=spec.name, unit="run", disable=not progress,
                   dynamic_ncols=True, smoothing=0.1)
        computed = 0
        try:
            for _, frame in executor.unordered(run_task, tasks(spec, design, done)):
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
