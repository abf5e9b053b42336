"""Variance decomposition and value of information (sim/calibration/uncertainty.py) on a toy simulator with a known answer:
the output is twice one parameter plus seed noise, so the shares of variance and the figure that helps are known."""

import numpy as np
import pandas as pd

from sim.calibration.uncertainty import (OBSERVATION_ONLY_ASSUMPTIONS, OTHER_FITTED, RANDOMNESS, Factors, decompose,
                                         design_key, group_of)

NOISE_SD = 0.5


def toy(runs):
    rows = []
    for params, seed in runs:
        noise = np.random.default_rng(seed).normal(0.0, NOISE_SD)
        rows.append({"y": 2 * params["price_sensitivity"] + noise, "informative": params["price_sensitivity"],
                     "irrelevant": params["trust_cn_europe"]})
    return pd.DataFrame(rows)


def test_grouped_sobol_and_value_of_information_recover_a_known_split():
    rng = np.random.default_rng(0)
    posterior = pd.DataFrame({"price_sensitivity": rng.random(2000), "trust_cn_europe": rng.random(2000)})
    factors = Factors(posterior, assumptions={}, seed_base=10)
    assert factors.groups == ["price and capability", "trust by origin", RANDOMNESS]
    indices, voi = decompose(factors, toy, ["y"], {"informative": 0.01, "irrelevant": 0.01}, n=1024, seed=3)
    by_group = indices.set_index("group")
    price_share = (4 / 12) / (4 / 12 + NOISE_SD**2)  # Var(2p) / (Var(2p) + Var(noise)), p uniform on [0, 1]
    assert abs(by_group.loc["price and capability", "S1"] - price_share) < 0.08
    assert abs(by_group.loc[RANDOMNESS, "ST"] - (1 - price_share)) < 0.08
    assert abs(by_group.loc["trust by origin", "ST"]) < 0.05
    voi = voi.set_index("figure")
    # knowing the parameter leaves only the noise: width shrinks by sqrt(1 - price_share)
    assert abs(voi.loc["informative", "width_after"] / voi.loc["informative", "width_now"]
               - np.sqrt(1 - price_share)) < 0.1
    assert voi.loc["irrelevant", "width_after"] / voi.loc["irrelevant", "width_now"] > 0.95


def test_parameters_fall_in_named_groups():
    assert group_of("trust_cn_global_south") == "trust by origin"
    assert group_of("switch_rate_firm") == OTHER_FITTED
    assert group_of("downloads_scale") == OTHER_FITTED
    assert group_of("something_new") == OTHER_FITTED


def lag_toy(runs):
    """The output moves with the Chinese lag only; the price declines and the other lags are drawn but inert."""
    return pd.DataFrame([{"y": params["cn_lag_months"] / 10 + np.random.default_rng(seed).normal(0.0, NOISE_SD),
                          "lag": params["cn_lag_months"]} for params, seed in runs])


def test_assumptions_are_reported_in_named_groups_and_a_new_one_alone():
    posterior = pd.DataFrame({"price_sensitivity": np.random.default_rng(1).random(500)})
    assumptions = {"price_decline_closed": (0.1, 0.6), "cn_lag_months": (4.0, 14.0), "price_decline_open": (0.1, 0.6),
                   "eu_lag_months": (3.0, 18.0), "brand_new_rate": (0.0, 1.0)}
    factors = Factors(posterior, assumptions, seed_base=10)
    assert list(dict.fromkeys(factors.groups)) == [
        "price and capability", "price declines (assumption)", "Chinese lag (assumption)",
        "other labs' lags (assumption)", "brand_new_rate (assumption)", RANDOMNESS]
    # a group's factors set its own parameters, whatever their order among the assumptions
    params, _ = factors.run_settings(np.array([0.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0]))
    assert params["price_decline_closed"] == 0.6 and params["cn_lag_months"] == 9.0 and params["eu_lag_months"] == 3.0
    indices, _ = decompose(factors, lag_toy, ["y"], {"lag": 0.1}, n=1024, seed=5)
    by_group = indices.set_index("group")
    lag_share = (100 / 12 / 100) / (100 / 12 / 100 + NOISE_SD**2)  # Var(U(4, 14) / 10) against the noise
    assert abs(by_group.loc["Chinese lag (assumption)", "S1"] - lag_share) < 0.08
    assert abs(by_group.loc["price declines (assumption)", "ST"]) < 0.05
    assert by_group.loc["price declines (assumption)", "members"] == "price_decline_closed, price_decline_open"


def test_the_stage_names_every_assumption_and_keeps_the_cost_of_ten_groups():
    """Every drawn assumption is in a named group or reaches no headline output; with the calibration's fitted
    parameters the design has 10 groups, N x 12 runs, as before the assumptions were split."""
    from sim.calibration.calibration_config import load_config
    from sim.calibration.uncertainty import ASSUMPTION_GROUPS
    from sim.core.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS

    named = {name for _, names in ASSUMPTION_GROUPS for name in names}
    assert set(PROJECTION_ASSUMPTIONS) == named | set(OBSERVATION_ONLY_ASSUMPTIONS)
    fitted = [p.name for p in load_config().priors]
    assumptions = {n: PARAMETERS[n].drawn for n in PROJECTION_ASSUMPTIONS if n not in OBSERVATION_ONLY_ASSUMPTIONS}
    factors = Factors(pd.DataFrame(columns=fitted), assumptions, seed_base=0)
    assert len(set(factors.groups)) == 10


def test_stored_runs_are_keyed_by_the_design(monkeypatch):
    """Regrouping the same factors changes the folder the stage's chunks are stored in, so a rerun after a change of
    grouping never reads runs of the old design (resume stays safe)."""
    from sim.calibration import uncertainty

    factors = Factors(pd.DataFrame(columns=["price_sensitivity"]), {"cn_lag_months": (4.0, 14.0)}, seed_base=0)
    before = design_key(factors, 8, 300, ["y"])
    assert design_key(factors, 8, 300, ["y"]) == before
    monkeypatch.setattr(uncertainty, "ASSUMPTION_GROUPS", (("lags", ("cn_lag_months",)),))
    assert design_key(factors, 8, 300, ["y"]) != before


def test_model_runs_are_stored_in_chunks_and_a_rerun_reads_them_back(tmp_path, monkeypatch):
    """The stage's runs are stored a chunk at a time; after an interruption a rerun runs only the missing chunk and
    returns the same table."""
    from sim.calibration import uncertainty
    from sim.running.executor import Executor

    calls = []

    def fake_run(job):
        params, seed, _, columns = job
        calls.append(seed)
        return {c: seed + params["x"] for c in columns}

    monkeypatch.setattr(uncertainty, "projection_row", fake_run)
    monkeypatch.setattr(uncertainty, "CHUNK", 2)
    runs = [({"x": 0.5}, seed) for seed in range(5)]
    with Executor(1) as executor:
        evaluate = uncertainty.model_evaluator(executor, 100, ["or_share_cn@2030-12"], tmp_path)
        first = evaluate(runs)
        assert calls == [0, 1, 2, 3, 4] and len(list(tmp_path.glob("chunk-*.parquet"))) == 3
        (tmp_path / "chunk-0001.parquet").unlink()  # as if killed while running the second chunk
        calls.clear()
        again = evaluate(runs)
    assert calls == [2, 3] and again.equals(first)
    assert first["or_share_cn@2030-12"].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
