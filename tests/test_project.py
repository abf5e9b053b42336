"""Projection engine: output tables, pairing, checkpoints and resume, reproducibility across worker counts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sim.running import project as P
from sim.running.projection_summary import SUMMARY_DATES
from sim.core.checks import InputError
from sim.core.observe import metric_names
from sim.statistics import nan_quantiles

AGENTS = 200  # tiny runs: these tests check the machinery, not the model
SCENARIOS = ["security_bans"]
COLUMNS = ["date", "metric", "mean", "q05", "q25", "q50", "q75", "q95"]


def run(out, members=3, workers=1, specs=SCENARIOS, plots=False, **kwargs):
    return P.project(specs, out=out, members=members, agents=AGENTS, workers=workers, progress=False, plots=plots,
                     **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("projections")
    report = run(out, plots=True)
    return out, report


@pytest.mark.slow
def test_writes_every_table_for_every_observable_to_2030(finished):
    out, report = finished
    assert report.scenarios == ["baseline", "security_bans"]  # baseline always comes along, first
    assert (report.ran, report.reused) == (6, 0)
    for name in report.scenarios:
        folder = out / name
        for table in ("quantiles.csv", "diff_vs_baseline.csv"):
            frame = pd.read_csv(folder / table, dtype={"date": str})
            assert list(frame.columns) == COLUMNS
            assert list(pd.read_parquet(folder / table.replace(".csv", ".parquet")).columns) == COLUMNS
            assert frame.date.iloc[0] == "2023-01" and frame.date.iloc[-1] == "2030-12"
            assert frame.date.str.fullmatch(r"\d{4}-\d{2}").all()
            assert set(frame.metric) == set(metric_names())
            assert len(frame) == 96 * len(metric_names())
            q = frame[["q05", "q25", "q50", "q75", "q95"]].dropna().to_numpy()
            assert np.all(np.diff(q, axis=1) >= -1e-12)
        regimes = pd.read_csv(folder / "regimes.csv").set_index("regime")["share_of_runs"]
        assert regimes.between(0, 1).all()
        assert regimes["cn_majority_marketplace"] + regimes["cn_minority_marketplace"] == pytest.approx(1)
        assert regimes[["leader_us", "leader_cn", "leader_eu"]].sum() == pytest.approx(1, abs=1e-3)  # 4 digits
        assert (folder / "manifest.json").is_file() and (folder / "fan_or_share_cn.png").is_file()
        assert (folder / "regions_2030.png").is_file()
    baseline_diff = pd.read_csv(out / "baseline" / "diff_vs_baseline.csv")
    assert np.nanmax(np.abs(baseline_diff[COLUMNS[2:]].to_numpy())) == 0
    for name in ("summary.md", "comparison.png", "regions_2030.png"):
        assert (out / name).is_file()
    summary = (out / "summary.md").read_text()
    assert "## security_bans" in summary and "## baseline" in summary
    for date in SUMMARY_DATES:
        assert f"vs baseline {date}" in summary


@pytest.mark.slow
def test_differences_are_paired_member_by_member(finished):
    out, report = finished
    stacks = {}
    for name in report.scenarios:
        files = sorted((out / P.MEMBERS_DIR / name).glob("m*.npz"))
        stacks[name] = np.stack([P.load_member(f)[1] for f in files])
    paired = stacks["security_bans"] - stacks["baseline"]
    diff = pd.read_csv(out / "security_bans" / "diff_vs_baseline.csv", dtype={"date": str})
    row = diff[(diff.date == "2030-12") & (diff.metric == "or_share_cn")].iloc[0]
    column = metric_names().index("or_share_cn")
    assert row.q50 == pytest.approx(np.median(paired[:, -1, column]), abs=1e-6)
    # Paired, not the difference of medians: the two differ whenever members disagree in rank.
    assert row["mean"] == pytest.approx(paired[:, -1, column].mean(), abs=1e-6)


def test_member_k_shares_seed_and_parameter_draw_across_scenarios():
    draws = lambda k: {"price_sensitivity": 0.1 + 0.1 * k}  # noqa: E731 - a stand-in posterior
    base = P.make_jobs(P.load_spec("baseline"), 3, AGENTS, 7, draws)
    bans = P.make_jobs(P.load_spec("security_bans"), 3, AGENTS, 7, draws)
    for k, (a, b) in enumerate(zip(base, bans)):
        assert a.seed == b.seed == 7 + k
        assert a.kwargs["price_sensitivity"] == b.kwargs["price_sensitivity"] == pytest.approx(0.1 + 0.1 * k)
        assert a.kwargs["shocks"] == () and b.kwargs["shocks"]
        assert a.fingerprint != b.fingerprint


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_members(tmp_path, monkeypatch, finished):
    reference_out, _ = finished
    saved = []
    original = P.save_member

    def save_then_interrupt(path, *args):
        original(path, *args)
        saved.append(path)
        if len(saved) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(P, "save_member", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert len(list((tmp_path / P.MEMBERS_DIR).rglob("m*.npz"))) == 4
    assert not (tmp_path / "security_bans").exists() and not (tmp_path / "summary.md").exists()
    stamps = {p: p.stat().st_mtime_ns for p in saved}

    monkeypatch.setattr(P, "save_member", original)
    report = run(tmp_path)
    assert (report.ran, report.reused) == (2, 4)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "finished members were redone"
    for name in ("baseline", "security_bans"):
        for table in ("quantiles.csv", "diff_vs_baseline.csv", "regimes.csv"):
            assert (tmp_path / name / table).read_bytes() == (reference_out / name / table).read_bytes()

    again = run(tmp_path, members=4)  # more members later: only the new ones run
    assert (again.ran, again.reused) == (2, 6)


@pytest.mark.slow
def test_changed_scenario_or_agents_are_not_mixed_with_old_members(tmp_path):
    scenario = tmp_path / "what_if.toml"
    scenario.write_text('name = "what_if"\nincludes = ["%s"]\n[[shock]]\ndate = "2026-01"\n'
                        'set = { cn_lag_months = 10 }\n' % (P.SCENARIO_DIR / "baseline.toml"))
    first = run(tmp_path, members=2, specs=[str(scenario)])
    assert first.ran == 4
    scenario.write_text(scenario.read_text().replace("= 10", "= 12"))
    second = run(tmp_path, members=2, specs=[str(scenario)])
    assert (second.ran, second.reused) == (2, 2)  # baseline reused, the edited scenario rerun
    third = P.project([str(scenario)], out=tmp_path, members=2, agents=AGENTS + 10, workers=1, progress=False,
                      plots=False)
    assert third.ran == 4


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_workers(tmp_path, finished):
    reference_out, _ = finished
    run(tmp_path, workers=2)
    for name in ("baseline", "security_bans"):
        assert (tmp_path / name / "quantiles.csv").read_bytes() == \
            (reference_out / name / "quantiles.csv").read_bytes()


def test_bad_options_are_refused_before_running(tmp_path):
    for kwargs, message in (({"members": 0}, "members"), ({"agents": 5}, "agents"), ({"workers": 0}, "workers")):
        args = {"members": 2, "agents": AGENTS, "workers": 1} | kwargs
        with pytest.raises(InputError, match=f"^{message}: "):
            P.project(SCENARIOS, out=tmp_path, progress=False, **args)
    assert not any(tmp_path.iterdir())


def test_nan_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    stack = rng.random((9, 12, 4))
    stack[rng.random(stack.shape) < 0.3] = np.nan
    stack[:, 0, 0] = np.nan
    qs = list(P.QUANTILES.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanquantile(stack, qs, axis=0)
    assert np.allclose(np.array(nan_quantiles(stack, qs)), expected, equal_nan=True)


@pytest.mark.slow
def test_members_draw_from_the_calibration_posterior(tmp_path):
    posterior = tmp_path / "posterior.csv"
    pd.DataFrame({"price_sensitivity": [0.2, 2.0], "trust_cn_europe": [0.5, 3.0], "weight": [1.0, 1.0]}).to_csv(
        posterior, index=False)
    out = tmp_path / "out"
    P.project(SCENARIOS, out=out, members=4, agents=AGENTS, workers=1, progress=False, plots=False,
              posterior=posterior)
    manifest = (out / "security_bans" / "manifest.json").read_text()
    assert "calibration posterior (posterior.csv, 2 weighted sets)" in manifest
    draws = P.parameter_sets(posterior)
    jobs = P.make_jobs(P.load_spec("security_bans"), 4, AGENTS, 0, draws)
    assert {j.kwargs["price_sensitivity"] for j in jobs} <= {0.2, 2.0}
    assert len({j.kwargs["price_sensitivity"] for j in jobs}) == 2, "members should sample different draws"
    # Checkpoints made without the posterior are not reused for runs with it, and vice versa.
    again = P.project(SCENARIOS, out=out, members=4, agents=AGENTS, workers=1, progress=False, plots=False)
    assert again.ran == 8


def test_list_shows_every_shipped_scenario(capsys):
    from sim.cli import main

    assert main(["project", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == P.available()


@pytest.mark.slow
def test_summary_covers_only_this_invocations_scenarios(tmp_path):
    """Issue 15, defect 2: a security_bans ensemble left in --out by an earlier invocation (seeds 0-1) must not be
    shown as a paired difference against a new baseline on other seeds (7-8)."""
    run(tmp_path, members=2)
    assert "## security_bans" in (tmp_path / "summary.md").read_text()
    run(tmp_path, members=2, specs=["baseline"], base_seed=7)
    summary = (tmp_path / "summary.md").read_text()
    assert "## security_bans" not in summary and "| security_bans |" not in summary
    assert "Scenarios: baseline, all projected by one `odsim project` invocation" in summary
    assert "seeds 7 to 8" in summary
    assert (tmp_path / "security_bans" / "quantiles.csv").is_file()  # earlier results stay on disk, uncompared
