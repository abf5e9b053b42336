"""Sweep specs, designs, seeds, the local executor, checkpoints and resumption (sim/exploration/sweep.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.core.checks import InputError
from sim.cli import main
from sim.running.runner import run_member
from sim.inputs.scenario import SCENARIO_DIR
from sim.running.executor import Executor
from sim.running.store import FolderBusy
from sim.exploration.sweep import ID_COLUMNS, read_results, run_sweep, run_task, tasks
from sim.inputs.sweep_spec import load_spec
from conftest import write_spec

ROOT = Path(__file__).resolve().parent.parent

# --- bad specs are refused before anything runs ------------------------------------------------------------
@pytest.mark.parametrize("change, key, words", [
    (dict(parameters='warp_speed = { low = 0, high = 1 }'), "parameters.warp_speed", "unknown parameter"),
    (dict(parameters='price_sensitivity = { low = 2.0, high = 2.0 }'), "parameters.price_sensitivity",
     "empty range"),
    (dict(parameters='price_sensitivity = { values = [] }'), "parameters.price_sensitivity.values", "empty"),
    (dict(parameters='price_sensitivity = { low = 0.1, high = 99 }'), "parameters.price_sensitivity",
     "in [0.05, 4.0]"),
    (dict(design="montecarlo"), "design", "allowed: grid, lhs, sobol, morris, saltelli"),
    (dict(design="sobol", samples=12), "samples", "power of 2"),
    (dict(design="grid", samples=None), "parameters.price_sensitivity.steps", "needs steps"),
    (dict(months='["2031-01"]'), "months", "not a simulated month"),
    (dict(parameters='start = { values = ["2023-02"] }'), "parameters.start", "cannot be swept"),
])
def test_bad_spec_is_refused_with_one_line_before_any_run(tmp_path, capsys, change, key, words):
    spec = write_spec(tmp_path, **change)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(spec) in err and f": {key}: " in err and words in err
    assert not out.exists()  # nothing written


def test_unknown_observable_and_top_level_key_are_refused(tmp_path):
    spec = write_spec(tmp_path, extra='\n[sensitivity]\noutputs = ["or_share_cn@2029-01"]\n')
    with pytest.raises(InputError, match="sensitivity.outputs"):
        load_spec(spec)
    spec.write_text(spec.read_text().replace('"or_share_open"', '"or_share_mars"'))
    with pytest.raises(InputError, match="unknown observable 'or_share_mars'"):
        load_spec(spec)
    spec.write_text("replicas = 3\n" + spec.read_text())
    with pytest.raises(InputError, match="replicas: unknown key"):
        load_spec(spec)


# --- designs and seeds -------------------------------------------------------------------------------------
def test_grid_design_is_the_full_product_with_log_steps_and_values(tmp_path):
    spec = load_spec(write_spec(tmp_path, design="grid", samples=None, parameters=(
        'price_sensitivity = { low = 0.1, high = 1.6, log = true, steps = 5 }\n'
        'network = { values = ["clustered", "complete"] }\n'
        'cn_lag_months = { low = 0, high = 12, steps = 3 }')))
    design = spec.design_table()
    assert len(design) == spec.n_points() == 5 * 2 * 3
    assert np.allclose(sorted(design.price_sensitivity.unique()), [0.1, 0.2, 0.4, 0.8, 1.6])
    assert set(design.network) == {"clustered", "complete"}
    assert sorted(design.cn_lag_months.unique()) == [0, 6, 12]
    assert len(design.drop(columns="point").drop_duplicates()) == len(design)


@pytest.mark.parametrize("design, samples, points", [("lhs", 7, 7), ("sobol", 8, 8), ("morris", 3, 9),
                                                     ("saltelli", 4, 16)])
def test_sampled_designs_stay_in_range_and_are_reproducible(tmp_path, design, samples, points):
    spec = load_spec(write_spec(tmp_path, design=design, samples=samples))
    table = spec.design_table()
    assert len(table) == spec.n_points() == points
    assert table.price_sensitivity.between(0.1, 2.0).all() and table.trust_cn_north_america.between(0, 4).all()
    assert table.equals(load_spec(write_spec(tmp_path, design=design, samples=samples)).design_table())
    other = write_spec(tmp_path, name="other", design=design, samples=samples)
    other.write_text(other.read_text().replace("seed = 3", "seed = 4"))
    assert not table.equals(load_spec(other).design_table())


def test_run_seeds_are_fixed_by_the_spec(tmp_path):
    common = load_spec(write_spec(tmp_path))
    seeds = {(t.point, t.replicate): t.seed for t in tasks(common, common.design_table())}
    assert {s for (p, r), s in seeds.items() if r == 1} == {3 + 1}  # common random numbers: seed + replicate
    path = write_spec(tmp_path, name="indep", extra="")
    path.write_text(path.read_text().replace("seed = 3", "seed = 3\ncommon_seeds = false"))
    independent = load_spec(path)
    seeds = [t.seed for t in tasks(independent, independent.design_table())]
    assert len(set(seeds)) == len(seeds) == independent.n_runs()
    assert seeds == [t.seed for t in tasks(independent, independent.design_table())]


def test_run_rows_are_the_models_own_output(tmp_path):
    # to mid-2025, when open and Chinese models carry marketplace tokens, so the comparison is not of zeros
    months = ["2024-12", "2025-06"]
    spec = load_spec(write_spec(tmp_path, end="2025-06", months=str(months).replace("'", '"')))
    task = next(tasks(spec, spec.design_table(), skip={0}))
    rows = run_task(task)
    assert task.run_id == 1 and task.kwargs["price_sensitivity"] == task.values["price_sensitivity"]
    direct = run_member({"n_agents": 200, "end": "2025-06", **task.values}, task.seed)
    assert rows.month.tolist() == months
    for name in ("or_share_cn", "or_share_open"):
        np.testing.assert_array_equal(rows[name].to_numpy(), direct.loc[months, name])
    assert rows.or_share_open.iloc[-1] > 0 and rows.or_share_cn.iloc[-1] > 0


# --- running, identical across worker counts, resumable ----------------------------------------------------
@pytest.mark.slow
def test_table_is_identical_with_one_or_two_workers_and_complete(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    one = run_sweep(spec, tmp_path / "one", Executor(1), progress=False)
    two = run_sweep(spec, tmp_path / "two", Executor(2), progress=False)
    a, b = pd.read_parquet(one.table), pd.read_parquet(two.table)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == spec.n_runs() * 2 and not a.duplicated(["run_id", "month"]).any()
    assert list(a.columns[:5]) == list(ID_COLUMNS)
    assert set(a.run_id) == set(range(spec.n_runs()))
    assert not (tmp_path / "one" / "parts").exists()
    for name in ("spec.toml", "design.parquet", "manifest.json"):
        assert (tmp_path / "one" / name).is_file()
    again = run_sweep(spec, tmp_path / "one", Executor(1), progress=False)
    assert again.computed == 0


def test_folder_of_another_spec_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    run_sweep(load_spec(write_spec(tmp_path)), out, Executor(1), progress=False)
    changed = write_spec(tmp_path, replicates=3)
    assert main(["sweep", str(changed), "--out", str(out), "--quiet"]) == 2
    assert "holds results of a different spec" in capsys.readouterr().err


@pytest.mark.slow
def test_temporary_and_repeated_parts_never_reach_the_table(tmp_path):
    """A half-written part (temporary name) is ignored and a run written twice appears once."""
    spec = load_spec(write_spec(tmp_path))
    out = tmp_path / "out"
    reference = pd.read_parquet(run_sweep(spec, tmp_path / "ref", Executor(1), progress=False).table)
    parts = out / "parts"
    parts.mkdir(parents=True)
    first = next(tasks(spec, spec.design_table()))
    rows = run_task(first)
    import pyarrow as pa
    table = pa.Table.from_pandas(rows, schema=spec.schema(), preserve_index=False)
    pq.write_table(table, parts / "part-000000000-1-1.parquet")
    pq.write_table(table, parts / "part-000000000-2-1.parquet")  # the same run twice
    (parts / ".part-000000001-3-1.parquet.tmp-99").write_bytes(b"PAR1 truncated")
    (out / "manifest.json").write_text('{"identity": "%s"}' % spec.identity())
    result = run_sweep(spec, out, Executor(1), progress=False)
    assert result.computed == spec.n_runs() - 1
    pd.testing.assert_frame_equal(pd.read_parquet(result.table), reference)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from sim.cli import main; sys.exit(main(sys.argv[1:]))", *args]


@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_without_loss_or_duplicates(tmp_path):
    spec_path = write_spec(tmp_path, name="killme", samples=20)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli("sweep", str(spec_path), "--out", str(out), "--workers", "1",
                                 "--checkpoint-every", "0.2", "--quiet"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((out / "parts").glob("part-*.parquet")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # then kill it wherever it is (possibly mid-write)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed; make it longer"
    assert not (out / "results.parquet").exists()
    partial = read_results(out)
    spec = load_spec(spec_path)
    assert 0 < partial.run_id.nunique() < spec.n_runs()
    print("killed after", partial.run_id.nunique(), "of", spec.n_runs())

    resumed = subprocess.run(_cli("sweep", str(spec_path), "--out", str(out), "--workers", "2", "--quiet"),
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    computed = int(resumed.stdout.split("(")[1].split()[0])
    assert computed == spec.n_runs() - partial.run_id.nunique()  # only the missing runs
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == spec.n_runs() * 2 and not table.duplicated(["run_id", "month"]).any()
    fresh = run_sweep(spec, tmp_path / "fresh", Executor(2), progress=False)
    pd.testing.assert_frame_equal(table, pd.read_parquet(fresh.table))


def _instant_run(task):
    """Instant runs: enough to measure what the engine itself holds in memory."""
    return pd.DataFrame({"run_id": task.run_id, "point": task.point, "replicate": task.replicate,
                         "seed": task.seed, "month": list(task.months),
                         **{k: v for k, v in task.values.items()},
                         **{o: np.full(len(task.months), 0.5) for o in task.observables}})


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_runs(tmp_path, monkeypatch):
    """Results go to disk as they arrive: running 4x the runs must not need much more memory."""
    import sim.exploration.sweep

    monkeypatch.setattr(sim.exploration.sweep, "run_task", _instant_run)
    warm = load_spec(write_spec(tmp_path, name="warm", samples=20, replicates=1))
    run_sweep(warm, tmp_path / "warm", Executor(1), progress=False)  # lazy imports are not the sweep's memory
    peaks = []
    for samples in (400, 1600):
        spec = load_spec(write_spec(tmp_path, name=f"mem{samples}", samples=samples, replicates=1))
        tracemalloc.start()
        run_sweep(spec, tmp_path / f"m{samples}", Executor(1), progress=False, checkpoint_seconds=0.3)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Holding every result until the end would add about 10 MB for the 1200 extra runs (measured); the design
    # and run-id bookkeeping add a few hundred kB.
    assert peaks[1] - peaks[0] < 2_000_000, peaks


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(path):
    spec = load_spec(path)
    assert spec.n_runs() >= 2 and len(spec.design_table()) == spec.n_points()


def test_posterior_draws_only_when_asked_and_swept_values_win(tmp_path, monkeypatch):
    import sim.inputs.posterior

    path = write_spec(tmp_path, extra="")
    path.write_text(path.read_text().replace("seed = 3", "seed = 3\nposterior = true"))
    monkeypatch.setattr(sim.inputs.posterior, "load_posterior", lambda *a: None)
    with pytest.raises(InputError, match="posterior: true needs calibration/posterior.csv"):
        load_spec(path)
    monkeypatch.setattr(sim.inputs.posterior, "load_posterior", lambda *a: pd.DataFrame({"weight": [1.0]}))
    monkeypatch.setattr(sim.inputs.posterior, "parameter_sets",
                        lambda *a: (lambda k: {"peer_weight": 1.0 + k, "price_sensitivity": 3.9}))
    spec = load_spec(path)
    runs = list(tasks(spec, spec.design_table()))
    assert {t.kwargs["peer_weight"] for t in runs if t.replicate == 1} == {2.0}  # draw r for replicate r
    assert all(t.kwargs["price_sensitivity"] == t.values["price_sensitivity"] != 3.9 for t in runs)
    plain = load_spec(write_spec(tmp_path, name="plain"))
    assert all("peer_weight" not in t.kwargs for t in tasks(plain, plain.design_table()))


def test_runs_start_from_the_scenario_with_its_shocks_then_fixed_then_swept(tmp_path):
    from sim.inputs.scenario import load_scenario

    path = write_spec(tmp_path, parameters='trust_cn_europe = { low = 0.0, high = 0.5 }')
    path.write_text(path.read_text().replace("baseline.toml", "security_bans.toml"))
    spec = load_spec(path)
    scenario = load_scenario(SCENARIO_DIR / "security_bans.toml")
    task = next(tasks(spec, spec.design_table()))
    assert task.kwargs["shocks"] == scenario.shocks and len(scenario.shocks) == 2
    assert task.kwargs["n_agents"] == 200 and task.kwargs["end"] == "2024-06"
    assert scenario.parameters.get("trust_cn_europe") != task.kwargs["trust_cn_europe"] <= 0.5


def test_a_second_sweep_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    from sim.exploration.sweep import _lock

    spec = load_spec(write_spec(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    with _lock(out):  # as a running sweep holds it
        with pytest.raises(FolderBusy, match="another odsim process is writing there"):
            run_sweep(spec, out, Executor(1), progress=False)
    assert run_sweep(spec, out, Executor(1), progress=False).computed == spec.n_runs()
