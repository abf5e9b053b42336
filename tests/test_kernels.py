"""The compiled step (sim/core/kernels.py) against the textbook NumPy formulas (tests/reference_step.py), month by
month on small populations: each month both start from the same state and draw the same random numbers.

Awareness is compared exactly. Work splits, neighbours' sums and group sums are compared within a stated bound:
the kernels use the C library's float32 exp where NumPy uses its own SIMD exp (they differ in the last bit for
about 4 in 10 arguments), and sum groups in float64 where NumPy's float32 matrix product rounds per block."""

import copy
import math
import types

import numpy as np
import pytest

import reference_step
from sim import DiffusionModel
from sim.core import kernels
from sim.inputs.scenario import load_scenario
from golden_cases import ROOT

SHARE_BOUND = 2e-6  # absolute, on a share of an agent's work (a few float32 steps of 1)
USAGE_BOUND = 1e-5  # relative to the group's total use
CONFIGS = {
    "clustered": {},
    "continuous_split": {"workload_scale": 0.0},
    "complete": {"network": "complete"},
    "no_choice": {"choice": False},
    "task_fit": {"task_fit_sd": 3.1},
    "bans": load_scenario(ROOT / "scenarios" / "security_bans.toml").model_kwargs(),
}


def paired_months(config: dict, months: int, seed: int = 3):
    """Yield (kernel model, reference model) after each month, both stepped from the same state (2025-12 to
    2026-09: the security_bans scenario's bans start in 2026-07)."""
    model = DiffusionModel(rng=seed, n_agents=1500, start="2025-11", end="2026-12", **config)
    for _ in range(months):
        reference = copy.deepcopy(model)
        reference._spread_awareness = types.MethodType(reference_step.spread_awareness, reference)
        reference._choose = types.MethodType(reference_step.choose, reference)
        model.step()
        reference.step()
        yield model, reference


@pytest.mark.parametrize("name", list(CONFIGS))
def test_kernels_match_the_numpy_reference_month_by_month(name):
    moved = 0
    before = None
    for model, reference in paired_months(CONFIGS[name], months=10):
        np.testing.assert_array_equal(model.aware, reference.aware)
        np.testing.assert_array_equal(model.uses_marketplace, reference.uses_marketplace)
        np.testing.assert_array_equal(model.active, reference.active)
        np.testing.assert_array_equal(model.workload_family, reference.workload_family)
        np.testing.assert_array_equal(model.adopted_month, reference.adopted_month)
        np.testing.assert_allclose(model.work, reference.work, rtol=0, atol=SHARE_BOUND)
        np.testing.assert_array_equal(model.work > 0, reference.work > 0)  # the same families in use
        np.testing.assert_allclose(model.tier_work, reference.tier_work, rtol=0, atol=SHARE_BOUND)
        np.testing.assert_allclose(model.use_work, reference.use_work, rtol=0, atol=SHARE_BOUND)
        if name != "complete":  # incremental sums equal the graph's sums from scratch
            np.testing.assert_allclose(model._neighbour_sums, reference._neighbour_sums, rtol=0,
                                       atol=SHARE_BOUND * model.graph.sum(axis=1).max())
        # every group; marketplace_by_use: tokens per (use, family), from each agent's split by use
        for group, use in reference.usage.items():
            np.testing.assert_allclose(model.usage[group], use, rtol=0, atol=USAGE_BOUND * max(use.sum(), 1e-300),
                                       err_msg=group)
        np.testing.assert_allclose(model.marketplace_by_region, reference.marketplace_by_region, rtol=0,
                                   atol=USAGE_BOUND * max(reference.usage["marketplace"].sum(), 1e-300))
        moved += before is not None and (model.work != before).any()
        before = model.work.copy()
    assert moved >= 8  # agents changed their splits in the months compared


@pytest.mark.parametrize("tiers", [{}, {"standard_tier": False}, {"price_tiers": False}])
def test_work_split_and_utility_api_match_the_reference(tiers):
    """The kernel's nested logit over three, two and one tiers against the textbook log-sum (scipy's logsumexp over
    the tiers each family offers) on a small population in 2025-06, when GPT and Claude offer three tiers."""
    model = DiffusionModel(rng=5, n_agents=800, end="2025-06", **tiers)
    while model.running:
        model.step()
    rows = np.arange(0, 800, 3)
    options = model.aware[rows] | model.released  # more options than agents know, to exercise the split
    np.testing.assert_allclose(model.utility(rows), reference_step.utility(model, rows), rtol=0, atol=1e-6)
    split = model._work_split(rows, options)
    np.testing.assert_allclose(split, reference_step.work_split(model, rows, options), rtol=0, atol=SHARE_BOUND)
    gpt_claude = model.tier_offered[[model.family_names.index(n) for n in ("GPT", "Claude")]]
    expected = {"{}": [True, True], "{'standard_tier': False}": [False, True], "{'price_tiers': False}": [False, False]}
    assert gpt_claude.tolist() == [expected[str(tiers)]] * 2  # (standard, efficient) offered
    offered = model.tier_offered.any(axis=0)
    assert (split[:, 1:].sum(axis=(0, 2)) > 0).tolist() == offered.tolist()  # every offered tier carries work


def test_row_sum_is_numpys_pairwise_sum():
    rng = np.random.default_rng(2)
    for n in range(0, 40):
        rows = rng.random((50, n)).astype(np.float32) * np.float32(1e3) ** rng.random((50, n)).astype(np.float32)
        np.testing.assert_array_equal([kernels.row_sum(r) for r in rows], rows.sum(axis=1), err_msg=f"n={n}")


def test_logit_split_is_a_softmax_over_the_options_without_slivers():
    """Ties, one option, no option and a NaN utility, plus random rows, against the textbook rule."""
    rng = np.random.default_rng(11)
    utility = rng.normal(0, 2, (400, 7)).astype(np.float32)
    utility[0] = 1.5  # a tie everywhere
    options = rng.random((400, 7)) < 0.6
    options[1], options[2] = False, False
    options[2, 3] = True  # one option
    utility[3, options[3].argmax()] = np.nan
    min_share = np.float32(0.05)
    expected = reference_step.logit_shares(utility, options, min_share)
    shares = np.empty_like(utility)
    for row in range(len(utility)):
        option = np.flatnonzero(options[row])
        kernels.logit_split(utility[row], option, len(option), min_share, shares[row])
    np.testing.assert_allclose(shares, expected, rtol=0, atol=SHARE_BOUND)
    assert (shares[1] == 0).all() and shares[2, 3] == 1.0 and (shares[3] == 0).all()
    assert np.allclose(shares[0][options[0]], 1 / options[0].sum())


def test_weighted_totals_do_not_depend_on_the_blas_thread_count():
    """The observables' demand-weighted sums (observe.weighted_total) give the same bits with one BLAS thread or
    several; a plain `weight @ values` does not on a multi-core machine (its threads split the sum)."""
    from threadpoolctl import threadpool_limits

    from sim.core.observe import weighted_total

    rng = np.random.default_rng(3)
    weight, used = rng.random(1_000_003), rng.random(1_000_003) > 0.3
    with threadpool_limits(limits=1):
        one = weighted_total(weight, used)
    with threadpool_limits(limits=4):
        several = weighted_total(weight, used)
    assert one == several and one == pytest.approx(math.fsum(weight[used]), rel=1e-12)


@pytest.mark.parametrize("setting", [{}, {"network": "complete"}, {"workload_scale": 0.0}],
                         ids=["default", "complete_mixing", "continuous_split"])
def test_draws_a_block_at_a_time_equal_one_block(monkeypatch, setting):
    """Awareness and workload draws are made a block of agents at a time (model.DRAW_BLOCK, 16,384; every other
    test runs fewer agents, so one block): blocks of 7 over 301 agents (a short last block) give the same
    outputs and state as one block, including the month's draws as workload_draws() redraws them."""
    import pandas as pd

    import sim.core.model as model_module

    def run():
        model = DiffusionModel(n_agents=301, rng=4, end="2023-09", **setting)
        while model.running:
            model.step()
        return (model.datacollector.get_model_vars_dataframe(), model.work.copy(), model.adopted_month.copy(),
                model.workload_draws().copy())

    whole = run()
    monkeypatch.setattr(model_module, "DRAW_BLOCK", 7)
    blocks = run()
    assert DiffusionModel(n_agents=301, rng=4)._workload_draws.shape[0] == 7  # the blocks are in use
    pd.testing.assert_frame_equal(whole[0], blocks[0], check_exact=True)
    for a, b in zip(whole[1:], blocks[1:]):
        np.testing.assert_array_equal(a, b)
