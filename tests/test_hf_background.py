"""Hugging Face background (docs/ODD.md 7.8): downloads of models outside the named families enter HF1's country
shares as specified, and nothing else: no OpenRouter, enterprise or named-family observable moves with them."""

import numpy as np
import pytest

from sim.running.runner import run_member
from sim.inputs.targets import TARGETS_TOML, load_targets, scale_targets, with_solved_scales

BACKGROUND_COLUMNS = ["hf_downloads_cum_background", "hf_downloads_cum_all", "hf_downloads_cum_country_cn",
                      "hf_downloads_cum_country_us"]
RUN = {"n_agents": 300, "end": "2025-08", "hf_background_cn_us": 0.1}


@pytest.fixture(scope="module")
def targets():
    return {t.id: t for t in load_targets(TARGETS_TOML, missing_ok=False)}


@pytest.fixture(scope="module")
def runs():
    """The same seed with the background's assumed share doubled (0.4 -> 0.8), its Chinese/US share fixed."""
    return {share: run_member({**RUN, "hf_background_share": share}, 11) for share in (0.4, 0.8)}


def _named_share(run, country: str) -> float:
    """The country's share of the named families' downloads over HF1's window (no background)."""
    window = lambda column: run.at["2025-08", column] - run.at["2024-07", column]  # noqa: E731
    return window(f"hf_downloads_cum_{country}") / window("hf_downloads_cum_open")


@pytest.mark.parametrize("target_id, country", [("HF1a", "cn"), ("HF1b", "us")])
def test_the_background_enters_the_country_shares_as_specified(runs, targets, target_id, country):
    """Share of all downloads = (1 - s) x the named families' share + s x the background's share, and doubling s
    moves HF1 toward the background's share."""
    named = _named_share(runs[0.4], country)
    assert 0.05 < named < 0.95  # the named families alone give the country a real share to move away from
    shares = {s: targets[target_id].statistic_of(run) for s, run in runs.items()}
    for s, share in shares.items():
        assert share == pytest.approx((1 - s) * named + s * RUN["hf_background_cn_us"], rel=1e-9)
    assert np.sign(shares[0.8] - shares[0.4]) == np.sign(RUN["hf_background_cn_us"] - named)


def test_the_background_moves_no_other_observable(runs):
    """Observation only: every OpenRouter, enterprise, regional and named-family column is bit-identical."""
    low, high = runs[0.4], runs[0.8]
    others = [c for c in low.columns if c not in BACKGROUND_COLUMNS]
    assert any(c.startswith("or_share") for c in others) and "hf_downloads_cum_open" in others
    for column in others:
        np.testing.assert_array_equal(low[column].to_numpy(float), high[column].to_numpy(float), err_msg=column)
    assert (high["hf_downloads_cum_background"] > low["hf_downloads_cum_background"]).iloc[-1]


def test_hf1_reads_all_downloads_and_is_left_alone_by_the_solved_downloads_scale(runs, targets):
    """HF1 compares shares of all downloads (background included); no level target reads the background, and
    rescaling every download column by the solved scale leaves the shares as they were."""
    for target_id in ("HF1a", "HF1b", "HF1c", "HF1d"):
        assert set(targets[target_id].metrics) & set(BACKGROUND_COLUMNS), target_id
    levels = scale_targets(list(targets.values()), "hf_downloads_cum_")
    assert levels and not any(set(t.metrics) & set(BACKGROUND_COLUMNS) for t in levels)
    run = runs[0.8]
    params = {**RUN, "hf_background_share": 0.8}
    scaled = with_solved_scales([targets[i] for i in ("HF1a", "HF7a")], [run], params)[0]
    assert scaled.at["2025-08", "hf_downloads_cum_all"] != run.at["2025-08", "hf_downloads_cum_all"]
    for target_id in ("HF1a", "HF1b", "HF1c"):
        assert targets[target_id].statistic_of(scaled) == pytest.approx(targets[target_id].statistic_of(run))
