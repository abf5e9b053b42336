"""Rolling-origin hindcasts (sim/calibration/hindcast.py): a hindcast at a cutoff never reads a catalogue row dated after it
(the fit, the predictive runs and the baselines' price path included), every held-out figure gets a forecast
from the model and is scored, baselines without an in-sample figure of a series say so, and bad cutoffs are
refused naming the key."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.calibration.calibration_config import load_config
from sim.running.executor import Executor
from sim.core.checks import InputError
from sim.calibration.hindcast import MODEL, MODEL_WITH_NOISE, hindcast_cutoff, split, summary_table
from sim.calibration.twin import TWIN
from sim.inputs.targets import TARGETS_TOML, load_targets
from conftest import SMALL

CONFIG = Path(__file__).resolve().parent.parent / "calibration" / "config.toml"
CUTOFF = "2025-06"


@pytest.mark.slow
def test_a_hindcast_knows_only_the_past_and_scores_every_held_out_figure(tmp_path, read_log):
    path = tmp_path / "config.toml"
    path.write_text(SMALL.format(population=6, generations=1).replace("n_agents = 1000", "n_agents = 150")
                    .replace("samples = 1000", "samples = 300"))
    config = load_config(path)
    targets = load_targets(TARGETS_TOML, missing_ok=False)
    in_sample, held_out = split(targets, CUTOFF)
    with Executor(1) as executor:  # in this process, so the instrumented catalogue sees every read
        scores, generations = hindcast_cutoff(0, CUTOFF, targets, config, tmp_path, executor, progress=False)
    assert {key for month, key in read_log if month > CUTOFF} == {"release_date"}
    assert any(month <= CUTOFF and key == "eci" for month, key in read_log)
    assert all(t.fit and t.end <= CUTOFF for t in in_sample) and all(t.end > CUTOFF for t in held_out)
    model = scores[scores.forecaster == MODEL].set_index("target")
    assert list(model.index) == [t.id for t in held_out]
    assert np.isfinite(model.crps_tol).all() and (model.crps_tol >= 0).all() and (model.members == 10).all()
    assert (model.is90_tol >= 0).all() and model.covered90.isin([True, False]).all()
    noisy = scores[scores.forecaster == MODEL_WITH_NOISE].set_index("target")
    assert list(noisy.index) == list(model.index)
    assert ((noisy.hi90 - noisy.lo90) / (model.hi90 - model.lo90)).mean() > 1.1  # the figure error widens them
    twin = scores[scores.forecaster == TWIN].set_index("target")  # fitted like the model: every held-out figure
    assert list(twin.index) == list(model.index) and (twin.members == 10).all()
    assert np.isfinite(twin.crps_tol).sum() >= len(twin) - 2  # (a ratio's denominator may be zero in every run)
    assert (twin.fitted_on == model.fitted_on).all()
    baselines = scores[~scores.forecaster.isin([MODEL, MODEL_WITH_NOISE, TWIN])]
    assert set(baselines.forecaster) == {"logistic", "bass", "generalized_bass"}
    # no OpenRouter open-share figure ends by 2025-06: no forecast for OR4, OR5, and it says why
    open_share = baselines[baselines.target.isin(["OR4", "OR5"])]
    assert len(open_share) == 6 and (open_share.forecast == "no: no in-sample figure of or_share_open").all()
    assert open_share.crps_tol.isna().all()
    cn_share = baselines[baselines.target.isin(["OR2", "OR3"])]
    assert len(cn_share) == 6 and np.isfinite(cn_share.crps_tol).all()
    assert (cn_share.fitted_on.str.contains("OR1")).all()
    assert generations.simulations.sum() >= 6
    # Resumed from the cache (fit and predictive runs), the stage gives the same tables without simulating again.
    calls = []
    with Executor(1) as executor:
        again, _ = hindcast_cutoff(0, CUTOFF, targets, config, tmp_path, executor, progress=False,
                                   on_particle=lambda *args: calls.append(args))
    assert calls == []
    pd.testing.assert_frame_equal(scores, again)


def test_summary_compares_forecasters_on_the_figures_all_of_them_forecast():
    rows = []
    for forecaster, crps in (("odsim", {"OR2": 1.0, "OR4": 3.0, "HF2": 5.0}), ("bass", {"OR2": 2.0})):
        for target in ("OR2", "OR4", "HF2"):
            if target in crps:
                rows.append({"forecaster": forecaster, "target": target, "forecast": "yes", "crps_tol": crps[target],
                             "is90_tol": 10 * crps[target], "covered90": target == "OR2"})
            elif forecaster == "bass" and target == "OR4":
                rows.append({"forecaster": forecaster, "target": target, "forecast": "no: no in-sample figure"})
    scores = pd.DataFrame(rows).assign(cutoff="2025-06", fitted_on="OR1", held_out=3)
    scores["openrouter"] = scores.target.str.startswith("OR")
    table = summary_table(scores).set_index("forecaster")
    assert table.loc["odsim", "or_crps"] == 1.0 and table.loc["bass", "or_crps"] == 2.0  # OR2 only: both forecast
    assert table.loc["odsim", "all_crps"] == 3.0 and table.loc["odsim", "all_n"] == 3
    assert table.loc["odsim", "coverage90"] == pytest.approx(1 / 3)
    assert table.loc["bass", "no_forecast"] == "OR4" and table.loc["odsim", "no_forecast"] == ""
    assert table.loc["bass", "or_is90"] == 20.0


@pytest.mark.parametrize("new, words", [
    ('cutoffs = ["2025-09", "2025-03"]', "increasing"),
    ('cutoffs = ["2023-06"]', "2024-01"),
    ('cutoffs = ["2026-01"]', "before run.end"),
    ("cutoffs = []", "non-empty list"),
    ('cutoffs = ["June"]', "a month YYYY-MM"),
])
def test_bad_hindcast_cutoffs_are_refused_naming_the_key(tmp_path, new, words):
    bad = tmp_path / "config.toml"
    text = CONFIG.read_text()
    old = 'cutoffs = ["2025-03", "2025-06", "2025-09"]'
    assert old in text
    bad.write_text(text.replace(old, new))
    with pytest.raises(InputError) as err:
        load_config(bad)
    assert "hindcast.cutoffs" in str(err.value) and words in str(err.value), str(err.value)
