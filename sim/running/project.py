"""Scenario projections to 2030-12: paired ensembles, quantiles, differences from baseline and regime shares.

`odsim project [SCENARIO ...]` runs, for every scenario, the same members: member k uses seed `base_seed + k` and
parameter set k from the calibration posterior (hand-set defaults without one) in every scenario. Differences from
baseline are therefore paired (common random numbers): they show the effect of the scenario, not seed noise.

Each finished member is checkpointed as one small .npz file under `<out>/_members/<scenario>/`, written
atomically and stamped with a fingerprint of everything that determines it (parameters, shocks, seed, agent count,
model code and data). A rerun reuses every member whose fingerprint still matches and runs only the rest, so an
interrupted suite resumes without redoing work, and a changed scenario file or model is never mixed with old runs.

Member k of every scenario repeats member k's baseline until the scenario's first shock (the same seed, parameters
and random streams, and no shock acts before its date), so one task per member runs the baseline and continues
each scenario from a copy of the baseline's model at the month before its first shock (runner.run_branched):
the shared months run once, and each result is the one its run alone would give. A scenario with settings of its
own besides shocks, or a shock in the first month, runs alone.

Per scenario, `<out>/<scenario>/` holds quantiles.csv, diff_vs_baseline.csv (date YYYY-MM, metric, mean, q05,
q25, q50, q75, q95), regimes.csv (share of members ending in each regime), manifest.json and fan charts; each
folder is replaced as a whole. `<out>/summary.md` and the cross-scenario charts cover the scenarios of this
invocation only (they share seeds and parameter draws, so the differences are paired); scenario folders left in
`<out>` by earlier invocations stay on disk but are not compared. To compare more scenarios, project them together
(finished members are reused from checkpoints).

Scenario arguments are names in scenarios/ (`security_bans`), file paths, or several joined by '+'
(`security_bans+us_open_push`), which composes them into one scenario (parameters of later files win, shocks add
up; a shock reached twice, e.g. baseline through two includes, counts once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.core import checks as check
from sim import statistics
from sim.core.calendar import parse_month
from sim.core.checks import InputError
from sim.core.observe import metric_names
from sim.core.parameters import resolve
from sim.running.executor import Executor
from sim.core.population import REGIONS
from sim.inputs.posterior import POSTERIOR_CSV, describe_source, parameter_sets, provenance
from sim.running.runner import branch_month, run_branched
from sim.inputs.scenario import SCENARIO_DIR, Scenario, load_scenarios, read as read_scenario
from sim.running.store import atomic_write, model_fingerprint, replace_folder, software_provenance

OUT_DIR = Path("results") / "projections"
MEMBERS_DIR = "_members"
BASELINE = "baseline"
END = "2030-12"
DEFAULT_MEMBERS = 200
# Agents per projection run. Between-member spread at 2000 agents is within a few percent of the spread at 5000
# for the headline shares (benchmarks/bench_projection_noise.py), while a run takes about half the time; the suite
# of ten scenarios x 200 members then fits the 15-minute budget on two cores.
PROJECTION_AGENTS = 2000
QUANTILES = statistics.FAN_QUANTILES

KEY_METRICS = {
    "or_share_cn": "Chinese-origin share of marketplace tokens",
    "or_share_open": "Open-weight share of marketplace tokens",
    "ent_share_open_us": "Open-weight share of US enterprise workloads",
    "or_share_us": "US-origin share of marketplace tokens",
    "hf_new_derivatives_share_cn": "Chinese share of new Hugging Face derivatives",
}


# --- regimes: where a member ends up in 2030-12 ------------------------------------------------------------------
def _leader(origin: str) -> Callable[[dict[str, float]], bool]:
    def test(row):
        shares = {o: row[f"or_share_{o}"] for o in ("us", "cn", "eu")}
        return max(shares, key=shares.get) == origin
    return test


REGIMES: list[tuple[str, str, Callable[[dict[str, float]], bool]]] = [
    ("cn_majority_marketplace", "Chinese-origin models take more than half of marketplace tokens",
     lambda r: r["or_share_cn"] > 0.5),
    ("cn_minority_marketplace", "Chinese-origin models take at most half of marketplace tokens",
     lambda r: r["or_share_cn"] <= 0.5),
    ("open_majority_marketplace", "Open-weight models take more than half of marketplace tokens",
     lambda r: r["or_share_open"] > 0.5),
    ("open_majority_us_enterprise", "Open-weight models take more than half of US enterprise spend",
     lambda r: r["ent_share_open_us"] > 0.5),
    *[(f"leader_{o}", f"{o.upper()}-origin models lead marketplace tokens", _leader(o)) for o in ("us", "cn", "eu")],
    *[(f"cn_majority_{r}", f"Chinese-origin models take more than half of usage in {r.replace('_', ' ')}",
       (lambda region: lambda row: row[f"share_cn_{region}"] > 0.5)(r)) for r in REGIONS],
]


# --- scenarios ---------------------------------------------------------------------------------------------------
def available() -> list[str]:
    """Names of the shipped scenario files, baseline first."""
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
    return sorted(names, key=lambda n: n != BASELINE)


def _path(part: str) -> Path:
    if part.endswith(".toml") or os.sep in part:
        return Path(part)
    path = SCENARIO_DIR / f"{part}.toml"
    if not path.is_file():
        raise InputError(part, "scenario", f"no such scenario; available: {', '.join(available())} "
                            "(or give a path to a .toml file; join several with '+')")
    return path


def dedupe(scenario: Scenario) -> Scenario:
    """The scenario with repeated identical shocks and files (e.g. baseline's, reached through two includes)
    counted once."""
    return dataclasses.replace(scenario, shocks=tuple(dict.fromkeys(scenario.shocks)),
                               files=tuple(dict.fromkeys(scenario.files)))


def _own_text(path: Path) -> dict[str, Any]:
    """A file's own narrative keys, without those of the files it includes."""
    data = read_scenario(path)
    return {key: data.get(key, default) for key, default in (("description", ""), ("rationale", ""), ("sources", []))}


def load_spec(spec: str) -> Scenario:
    """One scenario from a name, a path, or several joined by '+' (composed in that order).

    Its narrative (description, rationale, sources) is that of the named files themselves: every scenario includes
    baseline, whose text would otherwise open every summary."""
    parts = [p for p in spec.split("+")]
    if not all(parts):
        raise InputError(spec, "scenario", "empty name in a '+' composition; write e.g. security_bans+us_open_push")
    paths = [_path(p) for p in parts]
    scenario = dedupe(load_scenarios(paths))  # validates every file
    texts = [_own_text(p) for p in paths]
    return dataclasses.replace(
        scenario,
        description="\n\nTogether with: ".join(t["description"] for t in texts if t["description"]),
        rationale=" ".join(t["rationale"] for t in texts if t["rationale"]),
        sources=tuple(dict.fromkeys(src for t in texts for src in t["sources"])),
    )


def load_specs(specs: Iterable[str] | None) -> list[Scenario]:
    """Scenarios to project (all shipped files when none given), baseline first and always included."""
    specs = list(specs or available())
    scenarios = [load_spec(s) for s in specs]  # validate every file before running anything
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(dup, "name", "given twice; each scenario writes its own folder")
    if BASELINE not in names:
        scenarios.insert(0, load_spec(BASELINE))
    return sorted(scenarios, key=lambda s: s.name != BASELINE)


# --- members: fingerprints and checkpoints ----------------------------------------------------------------------
def _canonical(value: Any) -> Any:
    """JSON-ready form with a stable order (frozensets sorted), for fingerprints."""
    if dataclasses.is_dataclass(value):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, (frozenset, set)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


@dataclass(frozen=True)
class Job:
    scenario: str
    member: int
    seed: int
    kwargs: dict[str, Any]
    fingerprint: str


def make_jobs(scenario: Scenario, members: int, agents: int, base_seed: int,
              draws: Callable[[int], dict[str, Any]] | None) -> list[Job]:
    """Member k: seed base_seed + k and posterior draw k, with the scenario's own settings on top."""
    jobs = []
    for k in range(members):
        kwargs = dict(draws(k)) if draws else {}
        kwargs.update(scenario.model_kwargs())
        kwargs.update(n_agents=agents, end=END)
        stamp = json.dumps({"kwargs": _canonical(kwargs), "seed": base_seed + k, "code": model_fingerprint(),
                            "metrics": metric_names()}, sort_keys=True, default=str)
        jobs.append(Job(scenario.name, k, base_seed + k, kwargs, hashlib.sha256(stamp.encode()).hexdigest()))
    return jobs


def member_path(out: Path, scenario: str, member: int) -> Path:
    return out / MEMBERS_DIR / scenario / f"m{member:05d}.npz"


def load_member(path: Path, fingerprint: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(dates, values date x metric) of a checkpointed member, or None if absent, unreadable or stale."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if fingerprint is not None and str(data["fingerprint"]) != fingerprint:
                return None
            if list(data["metrics"]) != metric_names():
                return None
            return data["dates"], data["values"]
    except (OSError, KeyError, ValueError, EOFError):
        return None


def save_member(path: Path, fingerprint: str, dates: np.ndarray, values: np.ndarray) -> None:
    """Write a member's table atomically (temporary file, then rename)."""
    atomic_write(path, lambda tmp: np.savez(tmp, fingerprint=np.array(fingerprint), dates=np.asarray(dates, dtype=str),
                                            metrics=np.array(metric_names()), values=values))


def _table(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(dates, values date x metric in metric_names() order) of a run's table."""
    return frame.index.to_numpy(dtype=str), frame[metric_names()].to_numpy(dtype=float)


@dataclass(frozen=True)
class Task:
    """One worker task: a trunk run and the runs that branch from it (runner.run_branched). The trunk is member
    k's baseline, whose months before a scenario's first shock every scenario with the same other settings
    shares, or a scenario that cannot branch, run alone. `save_trunk`: the trunk's own result is wanted (else it
    runs only as far as its branches need)."""
    trunk: Job
    save_trunk: bool
    branches: tuple[tuple[Job, int], ...] = ()  # (job, branch month)

    @property
    def jobs(self) -> list[Job]:
        """The jobs whose results the task returns, in order."""
        return [self.trunk] * self.save_trunk + [job for job, _ in self.branches]

    @property
    def item(self) -> tuple:
        """What a worker receives (run_task)."""
        return (self.trunk.kwargs, self.trunk.seed, self.save_trunk,
                [(job.kwargs["shocks"], month) for job, month in self.branches])


def _branch_month(job: Job, trunk: Job) -> int | None:
    """The month from which `job` may continue a copy of `trunk`'s model (runner.branch_month), or None when it
    must run alone: another seed, or any setting but the shocks differs (parameters, agents, months)."""
    settings = [_canonical({k: v for k, v in j.kwargs.items() if k != "shocks"}) for j in (job, trunk)]
    if job.seed != trunk.seed or settings[0] != settings[1]:
        return None
    params = resolve({k: v for k, v in job.kwargs.items() if k != "shocks"})
    return branch_month(job.kwargs["shocks"], trunk.kwargs["shocks"], parse_month(params["start"]),
                        parse_month(params["end"]))


def plan_tasks(jobs: list[Job], trunks: dict[int, Job]) -> list[Task]:
    """Tasks that run `jobs`: per member, one task with its trunk (`trunks[member]`, run to the end only if it is
    among `jobs`) and every job that can branch from it; jobs that cannot, each alone."""
    wanted = {(j.scenario, j.member) for j in jobs}
    by_member: dict[int, list[tuple[Job, int]]] = {}
    tasks = []
    for job in jobs:
        trunk = trunks.get(job.member)
        if trunk is not None and (job.scenario, job.member) == (trunk.scenario, trunk.member):
            by_member.setdefault(job.member, [])
            continue
        month = None if trunk is None else _branch_month(job, trunk)
        if month is None:
            tasks.append(Task(job, True))
        else:
            by_member.setdefault(job.member, []).append((job, month))
    for member, branches in by_member.items():
        trunk = trunks[member]
        tasks.append(Task(trunk, (trunk.scenario, trunk.member) in wanted, tuple(branches)))
    return tasks


def run_task(item: tuple) -> list[tuple[np.ndarray, np.ndarray]]:
    """A Task's item run (runner.run_branched): the (dates, values) of each of the task's jobs, in order."""
    trunk, branches = run_branched(*item)
    return [_table(frame) for frame in ([trunk] if trunk is not None else []) + branches]


def run_jobs(jobs: list[Job], out: Path, executor: Executor, progress: bool,
             trunks: dict[int, Job] | None = None) -> int:
    """Run the jobs with `executor`, checkpointing each as its task finishes; on interruption, finished ones stay
    saved. Jobs branch from their member's trunk in `trunks` (default: the baseline jobs among `jobs`) where
    that gives the same run (plan_tasks). Returns the number run."""
    if trunks is None:
        trunks = {j.member: j for j in jobs if j.scenario == BASELINE}
    tasks = plan_tasks(jobs, trunks)
    with tqdm(total=len(jobs), desc="projection members", unit="run", disable=not progress,
              dynamic_ncols=True) as bar:
        for i, results in executor.unordered(run_task, [task.item for task in tasks]):
            for job, result in zip(tasks[i].jobs, results):
                save_member(member_path(out, job.scenario, job.member), job.fingerprint, *result)
                bar.set_postfix_str(job.scenario, refresh=False)
                bar.update()
    return len(jobs)


def load_ensemble(out: Path, jobs: list[Job]) -> tuple[list[str], np.ndarray]:
    """Dates and the member x date x metric stack of a scenario's checkpointed members."""
    loaded = [load_member(member_path(out, j.scenario, j.member), j.fingerprint) for j in jobs]
    missing = [j.member for j, m in zip(jobs, loaded) if m is None]
    if missing:
        raise RuntimeError(f"members {missing[:5]} of {jobs[0].scenario} are missing after the run")
    dates = [str(d) for d in loaded[0][0]]
    return dates, np.stack([values for _, values in loaded])


# --- tables --------------------------------------------------------------------------------------------------------
def quantile_frame(stack: np.ndarray, dates: list[str]) -> pd.DataFrame:
    """Fan-chart quantiles of every observable over the members of a member x date x metric stack."""
    return statistics.quantile_frame(stack, dates, metric_names(), QUANTILES)


def regime_frame(stack: np.ndarray, dates: list[str]) -> pd.DataFrame:
    """Share of members in each regime in the last month (lock-in can split outcomes into distinct regimes)."""
    final = stack[:, dates.index(END), :]
    rows = [dict(zip(metric_names(), member)) for member in final]
    records = []
    for regime, description, test in REGIMES:
        hits = [bool(test(r)) for r in rows]
        records.append({"regime": regime, "description": description, "date": END,
                        "share_of_runs": float(np.mean(hits)), "runs": len(rows)})
    return pd.DataFrame(records)


def manifest(scenario: Scenario, jobs: list[Job], agents: int, base_seed: int,
             posterior: Path = POSTERIOR_CSV) -> dict[str, Any]:
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "rationale": scenario.rationale,
        "sources": list(scenario.sources),
        "files": [os.path.relpath(f) if Path(f).is_absolute() else f for f in scenario.files],
        "members": len(jobs),
        "seeds": f"{base_seed} to {base_seed + len(jobs) - 1} (member k: seed {base_seed} + k)",
        "agents": agents,
        "end": END,
        "parameter_source": describe_source(Path(posterior)) + "; member k uses draw k in every scenario; the "
                            "scenario's own settings override it",
        "posterior": provenance(len(jobs), Path(posterior)),
        "scenario_parameters": scenario.parameters,
        "shocks": [s.describe() for s in scenario.shocks],
        **software_provenance(),
    }


def write_scenario(out: Path, scenario: Scenario, jobs: list[Job], baseline_stack: np.ndarray, dates: list[str],
                   agents: int, base_seed: int, plots: bool = True, posterior: Path = POSTERIOR_CSV) -> Path:
    """Aggregate a scenario's members and replace its results folder as a whole."""
    from sim.figures import projection_plots

    _, stack = load_ensemble(out, jobs)
    quantiles = quantile_frame(stack, dates)
    diff = quantile_frame(stack - baseline_stack[: len(stack)], dates)
    regimes = regime_frame(stack, dates)

    def write(folder: Path):
        quantiles.to_csv(folder / "quantiles.csv", index=False, float_format="%.6g")
        diff.to_csv(folder / "diff_vs_baseline.csv", index=False, float_format="%.6g")
        quantiles.to_parquet(folder / "quantiles.parquet", index=False)  # full precision, typed
        diff.to_parquet(folder / "diff_vs_baseline.parquet", index=False)
        regimes.to_csv(folder / "regimes.csv", index=False, float_format="%.4g")
        info = manifest(scenario, jobs, agents, base_seed, posterior)
        (folder / "manifest.json").write_text(json.dumps(_canonical(info), indent=2) + "\n")
        if plots:
            reference = None if scenario.name == BASELINE else quantile_frame(baseline_stack, dates)
            projection_plots.scenario_plots(quantiles, None if reference is None else diff, folder, scenario.name,
                                            KEY_METRICS, END, reference)

    return replace_folder(out / scenario.name, write)


def write_scenario_task(task: tuple) -> Path:
    """write_scenario for one tuple of its arguments: the form executors map over."""
    return write_scenario(*task)


# --- the whole projection ----------------------------------------------------------------------------------------
@dataclass
class ProjectionReport:
    scenarios: list[str]
    members: int
    agents: int
    ran: int  # members run now
    reused: int  # members taken from checkpoints
    folders: list[Path]
    summary: Path


def project(
    specs: Iterable[str] | None = None, out: Path = OUT_DIR, members: int = DEFAULT_MEMBERS,
    agents: int = PROJECTION_AGENTS, workers: int | None = None, base_seed: int = 0, progress: bool = True,
    plots: bool = True, posterior: Path = POSTERIOR_CSV, scheduler: str | None = None,
) -> ProjectionReport:
    """Project each scenario (all shipped ones by default; baseline always) to 2030-12 and write the results.
    Member k takes parameter set k from `posterior` when that file exists (hand-set defaults otherwise)."""
    check.whole(check.Argument("members"), "", members, 1)
    agents = check.parameter(check.Argument("agents"), "", "n_agents", agents)
    if workers is not None:
        check.whole(check.Argument("workers"), "", workers, 1)
    scenarios = load_specs(specs)
    out = Path(out)
    draws = parameter_sets(Path(posterior))
    plan = {s.name: make_jobs(s, members, agents, base_seed, draws) for s in scenarios}
    todo = [j for jobs in plan.values() for j in jobs
            if load_member(member_path(out, j.scenario, j.member), j.fingerprint) is None]
    total = sum(len(jobs) for jobs in plan.values())
    with Executor(workers, scheduler) as executor:  # a --scheduler that does not answer fails here, before any run
        ran = run_jobs(todo, out, executor, progress, {j.member: j for j in plan[BASELINE]})
        dates, baseline_stack = load_ensemble(out, plan[BASELINE])
        by_name = {s.name: s for s in scenarios}
        tasks = [(out, by_name[name], plan[name], baseline_stack, dates, agents, base_seed, plots, posterior)
                 for name in plan]
        # Scenarios are written side by side by the local workers (their charts take seconds each); a Dask
        # cluster's workers may not see this machine's disk, so with a scheduler this process writes them.
        writer = executor if executor.local else Executor(1)
        with tqdm(total=len(tasks), desc="writing results", unit="scenario", disable=not progress,
                  dynamic_ncols=True) as bar:
            folders = writer.gather(write_scenario_task, tasks, bar)
    from sim.running.projection_summary import write_summary

    summary = write_summary(out, plots, [s.name for s in scenarios])
    return ProjectionReport([s.name for s in scenarios], members, agents, ran, total - ran, folders, summary)
