"""The aggregate logit twin (sim/calibration/twin.py) and the ablations (sim/calibration/ablation.py): the twin is deterministic given its
parameters and releases and recovers its own parameters from data it generated; the model switches the twin and
the ablations use leave the default model unchanged and change the outputs when set; the ablation variants fix
what they switch off and drop the priors left with nothing to act on; the report says plainly when odsim loses
to its twin."""

from dataclasses import replace

import pandas as pd
import pytest

from sim.calibration.ablation import MECHANISMS, _variant, markdown
from sim.calibration.abc_smc import run_abc
from sim.calibration.calibration_config import load_config
from sim.calibration.recovery import recovery_table, synthetic_targets
from sim.calibration.simulator import needed_metrics, run_once
from sim.running.executor import Executor
from sim.calibration.hindcast import MODEL_WITH_NOISE, twin_verdict
from sim.running.runner import run_member
from sim.inputs.targets import TARGETS_TOML, load_targets
from sim.calibration.twin import TWIN, TWIN_FIXED, twin_config, twin_run
from conftest import SMALL

SHORT = {"n_agents": 300, "end": "2025-06"}
TWIN_PRIORS = """
[priors.openness_weight]
low = 0.0
high = 4.0
[priors.trust_cn_shared]
low = 0.0
high = 4.0
[priors.switching_cost]
low = 0.0
high = 3.0
"""


def _small(tmp_path, population, generations, priors=TWIN_PRIORS):
    path = tmp_path / "config.toml"
    path.write_text(SMALL.format(population=population, generations=generations).split("[priors.")[0] + priors)
    return load_config(path)


def test_the_twin_is_deterministic_and_differs_from_the_agent_based_model():
    fixed = {**dict(TWIN_FIXED), **SHORT, "draw_assumptions": False}  # no imputed-capability draws
    a, b = run_member(fixed, 1), run_member(fixed, 2)
    pd.testing.assert_frame_equal(a, b)  # no agent draws, no awareness draws, no network: the seed does nothing
    model = run_member({**SHORT, "draw_assumptions": False}, 1)
    assert (a.or_share_open - model.or_share_open).abs().max() > 0.01
    assert 0 < a.or_share_open.iloc[-1] < 1 and 0 < a.or_share_cn.iloc[-1] < 1


@pytest.mark.parametrize("name, default, switched", [("headline_filter", True, False),
                                                     ("population", "agents", "representative")])
def test_a_switch_at_its_default_leaves_the_model_unchanged_and_changes_it_when_set(name, default, switched):
    base = run_member(SHORT, 3)
    pd.testing.assert_frame_equal(run_member({**SHORT, name: default}, 3), base)
    changed = run_member({**SHORT, name: switched}, 3)
    assert not changed.equals(base)
    assert (changed.or_share_cn - base.or_share_cn).abs().max() > 1e-4


def test_twin_fits_only_its_own_parameters_with_the_runs_settings(tmp_path):
    config = _small(tmp_path, 10, 1)
    assert [p.name for p in twin_config(config).priors] == ["openness_weight", "trust_cn_shared"]
    run = replace(config.run, fixed=(("catalogue_cutoff", "2025-03"),))
    assert twin_run(run).fixed == (("catalogue_cutoff", "2025-03"), *TWIN_FIXED)


@pytest.mark.slow
def test_twin_fitted_to_its_own_data_recovers_its_parameters(tmp_path):
    config = _small(tmp_path, 30, 8)
    config = replace(twin_config(config), fit=replace(config.fit, max_simulations=400))
    # Without the imputed capabilities' draws the twin has no randomness at all: data and fit see the same releases.
    run = replace(twin_run(config.run), fixed=twin_run(config.run).fixed + (("draw_assumptions", False),))
    targets = [t for t in load_targets(TARGETS_TOML, missing_ok=False) if t.fit]
    truth = {"openness_weight": 2.5, "trust_cn_shared": 1.0}
    synthetic = synthetic_targets(targets, run_once(truth, run, 11, needed_metrics(targets)))
    with Executor(workers=2) as executor:
        result = run_abc("twin", synthetic, config, config.fit, run, tmp_path, executor, progress=False)
    table = recovery_table(truth, result, config.priors).set_index("parameter")
    assert table.inside90.all(), table.to_string()
    assert (table.width_vs_prior < 0.5).all(), table.to_string()


def test_each_ablation_fixes_what_it_switches_off_and_drops_idle_priors(tmp_path):
    config = _small(tmp_path, 10, 1, TWIN_PRIORS + "[priors.quality_weight]\nlow = 0.0\nhigh = 3.0\n")
    by_name = {m.name: m for m in MECHANISMS}
    assert set(by_name) >= {"headline_gap", "hf_growth", "quality_weight", "marketplace routing of domestic use",
                            "clustered network", "switching_cost", "workloads / multi-homing"}
    fit_config, run = _variant(config, by_name["workloads / multi-homing"])
    assert dict(run.fixed) == {"workload_scale": 0.0}
    assert "switching_cost" not in [p.name for p in fit_config.priors]
    fit_config, run = _variant(config, by_name["quality_weight"])
    assert dict(run.fixed)["quality_weight"] == 0.0 and len(fit_config.priors) == len(config.priors) - 1
    for mechanism in MECHANISMS:  # every switch-off is a valid model setting
        run_member({**SHORT, "end": "2023-03", **dict(mechanism.off)}, 0)


def test_reports_say_plainly_when_a_mechanism_or_the_model_earns_nothing():
    rows = [("all on", 1.0, 2.0), ("hf_growth", 0.9, 1.5), ("clustered network", 1.2, 2.5)]
    table = pd.DataFrame([{"mechanism": m, "switched_off_by": "-", "median_distance": fit, "crps": crps,
                           "or_crps": crps, "is90": 1.0, "coverage90": 0.9, "simulations": 10, "held_out": 5}
                          for m, fit, crps in rows])
    text = "\n".join(markdown(table, "2025-06"))
    assert "earn nothing: hf_growth." in text and "| clustered network | - | 1.20 | +0.20 | 2.50 | +0.50 |" in text
    cutoff = pd.DataFrame({"forecaster": [MODEL_WITH_NOISE, TWIN], "all_crps": [2.0, 1.5]})
    assert "does not beat its aggregate logit twin" in twin_verdict(cutoff)
    cutoff["all_crps"] = [1.0, 1.5]
    assert "beats its aggregate logit twin" in twin_verdict(cutoff) and "not" not in twin_verdict(cutoff)


def test_twin_and_ablation_budgets_come_from_the_config_and_quick_binds_them():
    from sim.calibration.calibration_config import CONFIG_TOML

    config, quick = load_config(CONFIG_TOML), load_config(CONFIG_TOML, quick=True)
    assert config.twin.population <= config.hindcast.population
    assert config.twin.generations == config.hindcast.generations
    assert quick.twin.population <= quick.hindcast.population
    assert quick.twin.max_simulations <= quick.hindcast.max_simulations
    assert config.ablation is not None and quick.ablation.max_simulations < config.ablation.max_simulations
