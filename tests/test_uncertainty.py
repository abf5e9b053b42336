"""Variance decomposition and value of information (sim/calibration/uncertainty.py) on a toy simulator with a known answer:
the output is twice one parameter plus seed noise, so the shares of variance and the figure that helps are known."""

import numpy as np
import pandas as pd

from sim.calibration.uncertainty import RANDOMNESS, Factors, decompose, group_of

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
    assert group_of("switch_rate_firm") == "switching and marketplace"
    assert group_of("downloads_scale") == "Hugging Face observation"
    assert group_of("something_new") == "other"


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
