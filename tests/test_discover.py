"""odsim discover: PRIM boxes on a sweep's results (sim/exploration/discover.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.exploration.discover import discover
from sim.exploration.sweep import run_sweep
from sim.inputs.sweep_spec import load_spec
from conftest import write_spec

PARAMS = ('price_sensitivity = { low = 0.1, high = 2.0 }\n'
          'trust_cn_north_america = { low = 0.0, high = 4.0 }\n'
          'network = { values = ["clustered", "complete"] }')


def _planted(todo):
    """Runs whose Chinese share exceeds 0.5 exactly when trust_cn_north_america < 1 and price_sensitivity > 1:
    PRIM must find that box."""
    for task in todo:
        v = task.values
        hit = v["trust_cn_north_america"] < 1.0 and v["price_sensitivity"] > 1.0
        share = 0.6 + 0.3 * (task.point % 3) / 3 if hit else 0.4 * ((task.point * 7) % 10) / 10
        yield pd.DataFrame({"run_id": task.run_id, "point": task.point, "replicate": task.replicate,
                            "seed": task.seed, "month": list(task.months), **v,
                            "or_share_cn": share, "or_share_open": 0.5})


class PlantedOutcomes:
    """Stands in for the executor: answers each sweep task with its planted outcome instead of a model run."""

    description = "planted outcomes (test stand-in)"

    def unordered(self, fn, items):
        yield from enumerate(_planted(items))


@pytest.fixture
def planted(tmp_path):
    spec = load_spec(write_spec(tmp_path, samples=400, replicates=1, parameters=PARAMS))
    return run_sweep(spec, tmp_path / "sweep", PlantedOutcomes(), progress=False).folder


@pytest.mark.slow
def test_prim_finds_the_planted_box_with_coverage_and_density(planted):
    out, text = discover(planted, "or_share_cn > 0.5", min_density=0.9)
    boxes = pd.read_csv(out / "boxes.csv")
    limits = pd.read_csv(out / "limits.csv").query("box == 1").set_index("parameter")
    first = boxes.iloc[0]
    assert first.density >= 0.9 and first.coverage >= 0.85
    assert set(limits.index) == {"trust_cn_north_america", "price_sensitivity"}  # network plays no part
    assert limits.loc["trust_cn_north_america", "low"] == 0.0  # open side reported at the swept bound
    assert float(limits.loc["trust_cn_north_america", "high"]) == pytest.approx(1.0, abs=0.25)
    assert float(limits.loc["price_sensitivity", "low"]) == pytest.approx(1.0, abs=0.2)
    assert float(limits.loc["price_sensitivity", "high"]) == 2.0
    assert "It happens in" in text and f"coverage {first.coverage:.0%}" in text
    assert (out / "discover.png").stat().st_size > 10_000
    assert pd.read_csv(out / "trajectory.csv").chosen.sum() == 1


@pytest.mark.slow
def test_outcome_in_another_month_and_direction(planted):
    out, _ = discover(planted, "or_share_cn@2023-12 <= 0.5")
    assert out.name == "or_share_cn_le_0.5_2023-12"
    assert pd.read_csv(out / "boxes.csv").density.iloc[0] >= 0.8


@pytest.mark.parametrize("outcome, words", [
    ("or_share_cn >> 0.5", "write OBSERVABLE OP NUMBER"),
    ("or_share_mars > 0.5", "not in this sweep"),
    ("or_share_cn@2030-12 > 0.5", "not kept in this sweep"),
    ("or_share_cn > 2", "happens in 0 of 400 runs"),
])
def test_bad_outcomes_are_refused_with_one_line(planted, capsys, outcome, words):
    assert main(["discover", str(planted), "--outcome", outcome]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not (planted / "discover").exists()


@pytest.mark.slow
def test_discover_on_a_real_sweep_from_its_spec_file(tmp_path, capsys):
    spec = write_spec(tmp_path, samples=12, replicates=2)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    table = pd.read_parquet(out / "results.parquet")
    threshold = float(np.median(table[table.month == "2024-06"].or_share_open))
    assert main(["discover", str(spec), "--out", str(out), "--outcome", f"or_share_open > {threshold}"]) == 0
    folder = out / "discover" / f"or_share_open_gt_{threshold:g}_2024-06"
    boxes = pd.read_csv(folder / "boxes.csv")
    assert 0 < boxes.coverage.iloc[0] <= 1 and 0 < boxes.density.iloc[0] <= 1
    assert "Box 1" in capsys.readouterr().out
