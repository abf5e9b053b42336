"""Behaviour of the core model: each test states a property the model must have and could fail."""

import numpy as np
import pandas as pd
import pytest
from mesa.discrete_space import Network

from sim import DiffusionModel
from sim.core.agents import Developer, Firm
from sim.core.observe import metric_names
from sim.core.population import REGIONS
from sim.running.runner import run_member
from sim.core.shocks import parse_shock

SMALL = {"n_agents": 1500, "end": "2025-12"}


def mean_over(frame: pd.DataFrame, metric: str, start: str, end: str) -> float:
    return float(frame.loc[start:end, metric].mean())


def paired_means(metric, start, end, seeds=(0, 1, 2), **changes):
    """Mean of `metric` over a window for base and changed runs with the same seeds (common random numbers)."""
    base = [mean_over(run_member(SMALL, s), metric, start, end) for s in seeds]
    changed = [mean_over(run_member({**SMALL, **changes}, s), metric, start, end) for s in seeds]
    return np.array(base), np.array(changed)


def test_price_cut_raises_the_familys_share():
    cut = (parse_shock({"date": "2024-06", "families": {"names": ["DeepSeek"]}, "price_factor": 0.2}),)
    base, changed = paired_means("or_share_deepseek", "2025-01", "2025-12", shocks=cut)
    assert (changed > base).all(), (base, changed)


@pytest.mark.slow
def test_trust_penalty_lowers_the_chinese_share_in_that_region():
    base, changed = paired_means("share_cn_europe", "2025-01", "2025-12", trust_cn_europe=4.0)
    assert (changed < base).all(), (base, changed)
    # the penalty is regional: China's own share of Chinese models is not lowered by Europe's distrust
    china_base, china_changed = paired_means("share_cn_china", "2025-01", "2025-12", trust_cn_europe=4.0)
    assert abs(china_changed.mean() - china_base.mean()) < 0.05


def test_unavailable_family_gets_zero_share():
    ban = (parse_shock({"date": "2023-01", "ban": {"names": ["Claude"]}}),)
    model = DiffusionModel(rng=3, shocks=ban, **SMALL)
    while model.running:
        model.step()
        claude = model.family_names.index("Claude")
        assert (model.work[:, claude] == 0).all()
    frame = model.datacollector.get_model_vars_dataframe()
    assert (frame["or_share_claude"] == 0).all()
    # US closed APIs are not sold in China directly: only Chinese agents routing through a marketplace,
    # which resells them, use GPT
    gpt = model.family_names.index("GPT")
    china = model.population.region == REGIONS.index("china")
    direct, resold = china & ~model.uses_marketplace, china & model.uses_marketplace
    assert direct.any() and resold.any()
    assert (model.work[direct, gpt] == 0).all()
    assert model.work[resold, gpt].sum() > 0
    assert model.work[~china, gpt].sum() > 0


def test_a_ban_mid_run_moves_users_off_the_family_at_once():
    ban = (parse_shock({"date": "2025-06", "ban": {"origin": "CN", "regions": ["europe"]}}),)
    model = DiffusionModel(rng=4, shocks=ban, **SMALL)
    europe = model.population.region == REGIONS.index("europe")
    cn = model.origin == 1
    while model.date < "2025-05":
        model.step()
    assert model.work[np.ix_(europe, cn)].sum() > 0  # Chinese models were used in Europe before the ban
    model.step()
    assert model.date == "2025-06" and model.work[np.ix_(europe, cn)].sum() == 0


def test_shares_sum_to_one():
    model = DiffusionModel(rng=5, **SMALL)
    while model.running:
        model.step()
    sums = model.work.sum(axis=1)
    assert np.allclose(sums[sums > 0], 1.0)
    frame = model.datacollector.get_model_vars_dataframe().iloc[1:]
    family_cols = [c for c in frame if c.startswith("or_share_") and c not in
                   ("or_share_open", "or_share_cn", "or_share_us", "or_share_eu")]
    assert len(family_cols) == len(model.family_names)
    assert np.allclose(frame[family_cols].sum(axis=1), 1.0)
    assert np.allclose(frame[["or_share_cn", "or_share_us", "or_share_eu"]].sum(axis=1), 1.0)
    for column in metric_names():
        if "share" in column:
            values = frame[column].dropna()
            assert ((values >= 0) & (values <= 1 + 1e-12)).all(), column


def test_same_seed_same_output_and_different_seeds_differ():
    first, again, other = run_member(SMALL, 11), run_member(SMALL, 11), run_member(SMALL, 12)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


@pytest.mark.slow
def test_results_do_not_depend_on_the_number_of_agents():
    """Agents carry weights of real demand: doubling them leaves shares within sampling noise."""
    window = ("2025-01", "2025-12")
    metrics = ["or_share_open", "or_share_cn", "share_cn_north_america"]

    def ensemble(n):
        return np.array([[mean_over(run_member({**SMALL, "n_agents": n}, s), m, *window) for m in metrics]
                         for s in range(6)])

    small, large = ensemble(2000), ensemble(4000)
    noise = np.sqrt(small.var(axis=0, ddof=1) / len(small) + large.var(axis=0, ddof=1) / len(large))
    assert (np.abs(small.mean(axis=0) - large.mean(axis=0)) < 4 * noise + 0.01).all(), (small.mean(0), large.mean(0))


def test_awareness_follows_the_bass_curve_without_choice_and_with_complete_mixing():
    p, q = 0.02, 0.5
    model = DiffusionModel(rng=7, n_agents=20000, end="2023-12", choice=False, network="complete",
                           initial_awareness=0.0, awareness_external=p, awareness_internal=q, awareness_release=0.0)
    gpt = model.family_names.index("GPT")
    weight = model.population.weight
    reachable = weight[model.available()[:, gpt]].sum() / weight.sum()  # GPT is not offered in China
    expected, simulated = [0.0], [weight @ model.aware[:, gpt] / weight.sum()]
    while model.running:
        model.step()
        f = expected[-1]
        expected.append(f + (1 - f) * (1 - (1 - p) * (1 - q * reachable * f)))  # discrete-time Bass
        simulated.append(weight @ model.aware[:, gpt] / weight.sum())
    assert expected[-1] > 0.5  # the curve took off: the comparison is not trivial
    assert np.abs(np.array(simulated) - np.array(expected)).max() < 0.03, (simulated, expected)


@pytest.mark.parametrize("headline_gap, expected", [(4.0, 0.5), (2.0, 0.0)])
def test_only_a_release_near_the_frontier_makes_headlines(headline_gap, expected):
    """DeepSeek-R1 (2025-01) came 3.1 ECI points behind o1: a headline when headline_gap is 4, not when it is 2.
    With no other channel of awareness, the share of unaware agents who learn of DeepSeek that month is
    awareness_release (0.5) or nothing."""
    model = DiffusionModel(rng=12, n_agents=5000, end="2025-01", awareness_external=0.0, awareness_internal=0.0,
                           awareness_release=0.5, headline_gap=headline_gap)
    deepseek = model.family_names.index("DeepSeek")
    while model.date != "2024-12":
        model.step()
    unaware = ~model.aware[:, deepseek]
    model.step()
    assert model.date == "2025-01" and model.released_now[deepseek]
    assert model.frontier - model.capability[deepseek] == pytest.approx(3.1, abs=0.05)
    learned = model.aware[unaware, deepseek].mean()
    assert learned == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize("growth", [1.0, 4.0])
def test_hugging_face_activity_grows_by_hf_growth_a_year_until_the_data_end(growth):
    """Per unit of use, Llama's downloads are downloads_scale x sizes^sizes_exponent in 2025-01, `hf_growth`
    times that a year later, and no more after 2026-01; its derivatives (Poisson, so within noise) grow alike."""
    model = DiffusionModel(rng=15, n_agents=500, end="2026-06", hf_growth=growth, derivatives_scale=5e6)
    llama = model.family_names.index("Llama")
    level = model.base_params["downloads_scale"] * model.sizes_factor[llama]
    downloads, derivatives = {}, {}
    while model.running:
        before = model.labs[llama].downloads_cum
        model.step()
        if model.date in ("2024-01", "2025-01", "2026-01", "2026-06"):  # months when Llama is in use
            downloads[model.date] = (model.labs[llama].downloads_cum - before) / model.usage["all"][llama]
            derivatives[model.date] = model.new_derivatives[llama] / model.usage["builders"][llama]
    assert downloads["2025-01"] == pytest.approx(level, rel=1e-6)
    assert downloads["2024-01"] == pytest.approx(level / growth, rel=1e-6)
    assert downloads["2026-01"] == pytest.approx(level * growth, rel=1e-6)
    assert downloads["2026-06"] == pytest.approx(level * growth, rel=1e-6)
    assert derivatives["2026-01"] / derivatives["2025-01"] == pytest.approx(growth, rel=0.05)


def test_quality_weight_favours_the_family_nearer_the_frontier_by_its_gap():
    """For a use both families serve, raising quality_weight from 0 to 2 changes the logit odds of Llama against
    DeepSeek by exactly exp(-2/5 x (Llama's gap - DeepSeek's gap)); everything else in the utility stays put."""
    model = DiffusionModel(rng=15, n_agents=300, end="2025-06", min_share=0.0,
                           workload_scale=0.0)  # the continuous split: the logit's shares themselves
    while model.running:
        model.step()
    llama, deepseek = model.family_names.index("Llama"), model.family_names.index("DeepSeek")
    rows = np.arange(len(model.work))
    model.population.use_mix[:] = (0.0, 1.0, 0.0)  # chat/roleplay only: a single logit choice per agent
    options = np.broadcast_to(model.released, model.work.shape)
    odds = {}
    for weight in (0.0, 2.0):
        model.params = {**model.params, "quality_weight": weight}
        shares = model._work_split(rows, options)
        odds[weight] = np.log(shares[:, 0, llama] / shares[:, 0, deepseek])  # neither has an efficient tier
    gap_difference = model.capability[deepseek] - model.capability[llama]
    assert gap_difference > 5  # Llama 4 Maverick (133.2) against DeepSeek-R1-0528 (142.2): a real gap
    np.testing.assert_allclose(odds[2.0] - odds[0.0], -2.0 / 5 * gap_difference, atol=1e-3)


def test_agents_are_mesa_agents_showing_their_own_state_on_a_network_space():
    model = DiffusionModel(rng=8, n_agents=300, end="2024-06")
    while model.running:
        model.step()
    users = model.users
    assert len(users) == 300 and all(isinstance(a, (Developer, Firm)) for a in users)
    assert {type(a) for a in users} == {Developer, Firm}
    agent = next(a for a in users if a.workload)
    assert sum(agent.workload.values()) == pytest.approx(1.0)
    assert agent.primary_family == max(agent.workload, key=agent.workload.get)
    assert agent.region in REGIONS
    space = model.space
    assert isinstance(space, Network)
    assert all(a.cell is not None for a in users)
    neighbours = {n.agents[0].index for n in users[0].cell.neighborhood if n.agents}
    assert neighbours == set(model.graph[users[0].index].indices)


def test_labs_release_after_the_catalogue_ends():
    model = DiffusionModel(rng=9, n_agents=300)
    capability_2026 = None
    while model.running:
        model.step()
        if model.date == "2026-01":
            capability_2026 = model.capability.copy()
    assert (model.capability >= capability_2026).all()
    assert model.capability.max() > capability_2026.max() + 20  # the frontier keeps growing to 2030


@pytest.mark.parametrize("home_share", [0.0, 0.25])
def test_marketplace_sees_only_what_china_routes_through_it(home_share):
    """Marketplace agents in China come to it for the US closed APIs not sold there: OpenRouter sees their GPT
    use in full but only `marketplace_home_share` of their Qwen use (bought directly at home); a North American
    marketplace agent's use of both is seen in full."""
    model = DiffusionModel(n_agents=600, end="2025-01", rng=5, marketplace_home_share=home_share)
    while model.running:
        model.step()
    gpt, qwen = model.family_names.index("GPT"), model.family_names.index("Qwen")
    region = model.population.region
    for name, seen_qwen in (("china", home_share), ("north_america", 1.0)):
        group = region == REGIONS.index(name)
        model.uses_marketplace = group.copy()
        model.work[:] = 0.0
        model.work[group, gpt] = model.work[group, qwen] = 0.5
        market = model._usage_by_group()["marketplace"]
        total = model.population.weight[group].sum()
        assert market[gpt] == pytest.approx(0.5 * total, rel=1e-5), name
        assert market[qwen] == pytest.approx(0.5 * total * seen_qwen, rel=1e-5, abs=1e-6 * total), name

