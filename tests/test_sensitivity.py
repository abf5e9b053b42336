"""odsim sensitivity: Morris and Sobol indices from sweeps run through the engine (sim/exploration/sensitivity.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from conftest import write_spec

# price_sensitivity changes which families agents choose; downloads_scale only scales Hugging Face download
# counts, which no agent's choice depends on. With common seeds its effect on a share is exactly zero.
PARAMS = ('price_sensitivity = { low = 0.1, high = 3.0 }\n'
          'downloads_scale = { low = 1e7, high = 1e9, log = true }')
# mid-2025: with workloads and habits the shares of a 200-agent run can still be zero in mid-2024
OUTPUTS = '\n[sensitivity]\noutputs = ["or_share_open@2025-06", "or_share_cn@2025-06"]\n'
HORIZON = dict(end="2025-06", months='["2024-06", "2025-06"]')


def _indices(folder):
    return pd.read_csv(folder / "sensitivity" / "indices.csv").set_index(["output", "parameter", "index"])


@pytest.mark.slow
def test_morris_ranks_an_inert_parameter_at_zero(tmp_path, capsys):
    spec = write_spec(tmp_path, name="morris", design="morris", samples=4, replicates=2, parameters=PARAMS,
                      extra=OUTPUTS, **HORIZON)
    out = tmp_path / "out"
    assert main(["sensitivity", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    table = _indices(out)
    for output in ("or_share_open@2025-06", "or_share_cn@2025-06"):
        assert table.loc[(output, "downloads_scale", "mu_star"), "value"] == 0
        # active: a positive effect (small in absolute terms where a share is small); inert: exactly zero
        assert table.loc[(output, "price_sensitivity", "mu_star"), "value"] > 0
        assert table.loc[(output, "price_sensitivity", "mu_star"), "conf"] >= 0
    assert (out / "sensitivity" / "sensitivity.png").stat().st_size > 10_000
    assert "| price_sensitivity |" in (out / "sensitivity" / "summary.md").read_text()
    assert "or_share_open@2025-06" in capsys.readouterr().out
    # the runs went through the sweep engine: a second call finds them on disk and gives the same indices
    stamp = (out / "results.parquet").stat().st_mtime_ns
    assert main(["sensitivity", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert (out / "results.parquet").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(_indices(out), table)


@pytest.mark.slow
def test_sobol_indices_with_confidence_intervals(tmp_path):
    spec = write_spec(tmp_path, name="sobol", design="saltelli", samples=8, replicates=1, parameters=PARAMS,
                      extra=OUTPUTS, **HORIZON)
    out = tmp_path / "out"
    assert main(["sensitivity", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    table = _indices(out)
    output = "or_share_open@2025-06"
    assert table.loc[(output, "downloads_scale", "ST"), "value"] == 0
    assert table.loc[(output, "price_sensitivity", "ST"), "value"] > 0.5
    assert np.isfinite(table.xs("S1", level="index").conf).all()
    assert len(pd.read_parquet(out / "results.parquet")) == 8 * (2 + 2) * 2  # N(d+2) points x 2 months


def test_sensitivity_refuses_a_design_without_indices_before_running(tmp_path, capsys):
    spec = write_spec(tmp_path, design="lhs")
    out = tmp_path / "out"
    assert main(["sensitivity", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: design:" in err and "'morris' or 'saltelli'" in err
    assert not out.exists()
