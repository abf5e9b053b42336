"""Projection branching (issue 17): a scenario continued from a copy of its member's baseline model at its first
shock month gives exactly the run it would give alone; runs that cannot branch run alone; a partly done suite
resumes to the same files."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.calendar import parse_month
from sim.core.model import DiffusionModel
from sim.core.shocks import parse_shock
from sim.running import project as P
from sim.running.executor import Executor
from sim.running.runner import branch_month, run_member

AGENTS = 150  # tiny runs: equality, not the model's behaviour, is tested
START, END = parse_month("2023-01"), parse_month(P.END)


def plan(specs, members, draws=None):
    return {s.name: P.make_jobs(s, members, AGENTS, 0, draws) for s in P.load_specs(specs)}


def shock(date, **change):
    return parse_shock({"date": date, **change})


def test_branch_month_is_the_first_month_the_shocks_in_effect_differ():
    early, late = shock("2026-01", set={"release_pace": 2.0}), shock("2026-07", add={"price_sensitivity": 0.1})
    assert branch_month((early, late), (), START, END) == parse_month("2026-01")
    assert branch_month((early, late), (early,), START, END) == parse_month("2026-07")
    # The same shocks in another order act differently (parameter changes apply in order) from their date on.
    assert branch_month((late, early), (early, late), START, END) == parse_month("2026-07")
    assert branch_month((early,), (early,), START, END) is None  # never differ: nothing to branch
    assert branch_month((shock("2023-01", set={"release_pace": 2.0}),), (), START, END) is None  # nothing shared


@pytest.mark.slow
def test_every_shipped_scenario_branched_equals_its_run_alone():
    jobs = plan(None, 2, draws=lambda k: {"price_sensitivity": 0.5 + 0.3 * k})  # members differ in parameters too
    assert len(jobs) == len(P.available()) > 2
    trunks = {j.member: j for j in jobs[P.BASELINE]}
    tasks = P.plan_tasks([j for js in jobs.values() for j in js], trunks)
    assert len(tasks) == 2, "every shipped scenario should branch from its member's baseline"
    for task in tasks:
        assert task.save_trunk and {j.scenario for j, _ in task.branches} == set(jobs) - {P.BASELINE}
        for job, (dates, values) in zip(task.jobs, P.run_task(task.item)):
            alone = run_member(job.kwargs, job.seed)
            assert list(dates) == list(alone.index)
            assert np.array_equal(values, alone[P.metric_names()].to_numpy(float), equal_nan=True), job.scenario


def scenario_file(tmp_path, name, body):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\nincludes = ["{P.SCENARIO_DIR / "baseline.toml"}"]\n{body}')
    return str(path)


def test_a_scenario_with_its_own_settings_or_a_first_month_shock_runs_alone(tmp_path):
    shocked = '[[shock]]\ndate = "2026-07"\nscale = { release_pace = 1.5 }\n'
    specs = [scenario_file(tmp_path, "own_setting", "[parameters]\nprice_sensitivity = 0.9\n" + shocked),
             scenario_file(tmp_path, "from_start", shocked.replace("2026-07", "2023-01")),
             scenario_file(tmp_path, "branches", shocked)]
    jobs = plan(specs, 1)
    tasks = P.plan_tasks([j for js in jobs.values() for j in js], {0: jobs[P.BASELINE][0]})
    alone = sorted(t.trunk.scenario for t in tasks if not t.branches)
    assert alone == ["from_start", "own_setting"]
    (group,) = [t for t in tasks if t.branches]
    assert group.trunk.scenario == P.BASELINE
    assert [(j.scenario, month) for j, month in group.branches] == [("branches", parse_month("2026-07"))]


@pytest.mark.slow
def test_a_scenario_run_alone_equals_its_run_member(tmp_path):
    spec = scenario_file(tmp_path, "own_setting", '[parameters]\nprice_sensitivity = 0.9\n[[shock]]\n'
                         'date = "2026-07"\nscale = { release_pace = 1.5 }\n')
    jobs = plan([spec], 1)
    (task,) = [t for t in P.plan_tasks(jobs["own_setting"], {0: jobs[P.BASELINE][0]})]
    assert not task.branches and task.trunk.scenario == "own_setting"
    (result,) = P.run_task(task.item)
    assert np.array_equal(result[1], run_member(task.trunk.kwargs, task.trunk.seed)[P.metric_names()].to_numpy(float),
                          equal_nan=True)


@pytest.mark.slow
def test_a_partly_done_suite_resumes_to_the_same_files(tmp_path):
    specs = ["security_bans", "closed_frontier_leap"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    for out in (whole, part):
        P.project(specs, out=out, members=3, agents=AGENTS, workers=1, progress=False, plots=False)
    files = sorted(p.relative_to(part) for p in (part / P.MEMBERS_DIR).rglob("m*.npz"))
    assert len(files) == 9
    # As a kill -9 could leave it: member 0 without its baseline, member 1 without a scenario, member 2 whole.
    removed = [part / P.MEMBERS_DIR / "baseline" / "m00000.npz", part / P.MEMBERS_DIR / "security_bans" / "m00001.npz",
               part / P.MEMBERS_DIR / "closed_frontier_leap" / "m00001.npz"]
    for path in removed:
        path.unlink()
    kept = {p: p.stat().st_mtime_ns for p in (part / P.MEMBERS_DIR).rglob("m*.npz")}
    report = P.project(specs, out=part, members=3, agents=AGENTS, workers=2, progress=False, plots=False)
    assert (report.ran, report.reused) == (3, 6)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items()), "a finished member was run again"
    for name in files:
        assert P.load_member(part / name)[1].tobytes() == P.load_member(whole / name)[1].tobytes(), name
    for name in ("baseline", *specs):
        assert (part / name / "quantiles.csv").read_bytes() == (whole / name / "quantiles.csv").read_bytes()


def test_trunk_that_is_done_runs_only_as_far_as_its_branches(monkeypatch):
    """Member k's baseline already saved: the task does not want it back, and stops it at the last branch."""
    jobs = plan(["security_bans"], 1)
    baseline, bans = jobs[P.BASELINE][0], jobs["security_bans"][0]
    (task,) = P.plan_tasks([bans], {0: baseline})
    assert not task.save_trunk and task.jobs == [bans]
    steps = []
    original = DiffusionModel.step

    def counted(model):
        steps.append(model.month)
        original(model)

    monkeypatch.setattr(DiffusionModel, "step", counted)
    with Executor(1) as executor:
        assert len(list(executor.unordered(P.run_task, [task.item]))) == 1
    branch = task.branches[0][1]
    assert branch == parse_month("2026-07")
    # The trunk steps from the first month to the month before the branch, the branch from there to the end:
    # the months of one run, none of them twice.
    assert steps == list(range(START, branch - 1)) + list(range(branch - 1, END))
