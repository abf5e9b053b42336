"""`odsim run`: the main job's outputs, and refusal of bad scenario files (one clear line, exit 2, nothing written)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core.observe import metric_names

ROOT = Path(__file__).resolve().parent.parent


def odsim(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.slow
def test_run_writes_timeseries_summary_manifest_and_plots(tmp_path):
    result = odsim("run", "--seeds", "3", "--agents", "800", "--workers", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "baseline"
    table = pd.read_csv(folder / "timeseries.csv", dtype={"date": str})
    typed = pd.read_parquet(folder / "timeseries.parquet")  # the same table at full precision
    assert list(typed.columns) == list(table.columns) and len(typed) == len(table)
    np.testing.assert_allclose(typed["q50"].to_numpy(float), table["q50"].to_numpy(float), rtol=1e-5)
    assert list(table.columns) == ["date", "metric", "mean", "q05", "q50", "q95"]
    assert set(table.metric) == set(metric_names())
    assert table.date.iloc[0] == "2023-01" and table.date.iloc[-1] == "2030-12"
    assert len(table) == 96 * len(metric_names())
    ordered = table.dropna()
    assert ((ordered.q05 <= ordered.q50) & (ordered.q50 <= ordered.q95)).all()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["seeds"] == [0, 1, 2]
    # The manifest records what each member ran with: its posterior draw (file hash and row) under the options.
    from sim.inputs.posterior import POSTERIOR_CSV, load_posterior

    posterior = load_posterior(POSTERIOR_CSV)
    assert manifest["posterior"]["sha256"] == hashlib.sha256(POSTERIOR_CSV.read_bytes()).hexdigest()
    for member, row in zip(manifest["members"], manifest["posterior"]["draw_rows"]):
        assert member["parameters"]["n_agents"] == 800
        for name in posterior.columns.drop("weight"):
            assert member["parameters"][name] == pytest.approx(posterior.loc[row, name]), name
    assert len({json.dumps(m["parameters"], sort_keys=True) for m in manifest["members"]}) > 1
    assert "mesa" in manifest["versions"] and manifest["git_commit"]
    summary = (folder / "summary.md").read_text()
    assert "2025-12" in summary and "2030-12" in summary
    for plot in ("open_vs_closed.png", "marketplace_by_origin.png", "huggingface.png", "cn_share_by_region.png"):
        assert (folder / plot).stat().st_size > 10_000
    # no temporary folders left; the lock file stays (removing it while another run may open it would break it)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".baseline.lock"]


@pytest.mark.slow
def test_run_output_does_not_depend_on_worker_count(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for out, workers in ((one, "1"), (two, "2")):
        result = odsim("run", "--seeds", "2", "--agents", "500", "--workers", workers, "--out", str(out))
        assert result.returncode == 0, result.stderr
    assert (one / "baseline" / "timeseries.csv").read_bytes() == (two / "baseline" / "timeseries.csv").read_bytes()


BAD_FILES = {
    "unknown top-level key": ('name = "x"\ncolour = "red"\n', "colour"),
    "unknown parameter": ('name = "x"\n[parameters]\nprice_sensitivty = 1.0\n', "parameters.price_sensitivty"),
    "out-of-range value": ('name = "x"\n[parameters]\nprice_sensitivity = -3\n', "parameters.price_sensitivity"),
    "malformed date": ('name = "x"\n[[shock]]\ndate = "2026-13"\nset = { cn_lag_months = 9 }\n', "shock[1].date"),
    "unknown family": ('name = "x"\n[[shock]]\ndate = "2026-01"\nfamilies = { names = ["Bard"] }\n'
                       'price_factor = 0.5\n', "shock[1].families.names"),
    "unknown region": ('name = "x"\n[[shock]]\ndate = "2026-01"\nban = { origin = "CN", regions = ["mars"] }\n',
                       "shock[1].ban.regions"),
    "not TOML": ('name = "x\n', "toml"),
    "bad seeds": ('name = "x"\n[run]\nseeds = 0\n', "run.seeds"),
}


@pytest.mark.slow  # a Python start-up each; tests/test_bad_inputs.py checks these files in-process
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_scenario_file_is_refused_with_one_clear_line(tmp_path, case):
    text, key = BAD_FILES[case]
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    out = tmp_path / "out"
    # the good baseline is listed first: nothing may run or be written when any file is bad
    result = odsim("run", str(ROOT / "scenarios" / "baseline.toml"), str(bad), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and key in lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_include_cycle_is_refused(tmp_path):
    (tmp_path / "a.toml").write_text('name = "a"\nincludes = ["b.toml"]\n')
    (tmp_path / "b.toml").write_text('name = "b"\nincludes = ["a.toml"]\n')
    result = odsim("run", str(tmp_path / "a.toml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "includes" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_help_explains_every_command():
    result = odsim("--help")
    assert result.returncode == 0
    assert "run" in result.stdout


@pytest.mark.slow
def test_quiet_run_prints_only_what_it_wrote(tmp_path):
    """--quiet: no progress bar, and no warnings (e.g. RuntimeWarning) in normal output."""
    result = odsim("run", "--seeds", "2", "--agents", "100", "--workers", "1", "--quiet", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == f"baseline: wrote {tmp_path / 'baseline'}\n"


def test_version_and_params(capsys):
    from importlib.metadata import version

    from sim.calibration.calibration_config import load_config
    from sim.cli import main
    from sim.core.parameters import PARAMETERS

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"odsim {version('odsim')}"
    assert main(["params"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and not line.startswith("| parameter")}
    assert set(rows) == set(PARAMETERS)
    fitted = {p.name for p in load_config().priors}
    assert {name for name, cells in rows.items() if cells[3] == "yes"} == fitted
    assert "trust_us_china" in fitted and "'clustered' or 'complete'" in rows["network"][2]
    assert rows["price_sensitivity"][2] == "a number in [0.05, 4.0]" and rows["n_agents"][1] == "5000"
