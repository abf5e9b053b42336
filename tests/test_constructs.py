"""The constructs of issue 18 that do not touch the choice rule: imputed capability, assumption draws, ecosystems."""

import math

import numpy as np
import pytest

from sim.core.catalogue import ORIGINS, frontier_trend, release_tier, releases
from sim.core.model import DiffusionModel
from sim.core.parameters import PARAMETERS, PROJECTION_ASSUMPTIONS, TRUST_SHARED_REGIONS
from sim.core.population import REGIONS


def test_every_catalogue_release_has_a_capability_and_only_imputed_ones_are_uncertain():
    """Missing capability is missing, not zero: no release is NaN; rated ECIs are exact, imputed ones carry a spread;
    the unrated Qwen-72B sits near its lab's later releases, not at zero."""
    for r in releases():
        assert math.isfinite(r.capability), r.model
        assert (r.capability_sd == 0) == (r.capability_from == "eci"), r.model
    qwen = next(r for r in releases() if r.model == "Qwen-72B")
    assert qwen.capability_from == "lag" and 0 < qwen.capability_sd < 10
    trend = frontier_trend()
    assert abs(qwen.capability - (trend.level_at_end - trend.eci_per_year * 26 / 12)) < 25


@pytest.mark.slow
def test_imputed_capabilities_are_drawn_per_run_with_their_spread_and_central_without_draws():
    qwen = next(r for r in releases() if r.model == "Qwen-72B")
    llama = next(r for r in releases() if r.model == "Llama 2 70B")
    draws = [DiffusionModel(rng=seed, n_agents=50, end="2023-01").release_capability for seed in range(200)]
    values = np.array([d[qwen] for d in draws])
    assert values.std() == pytest.approx(qwen.capability_sd, rel=0.2)
    assert {d[llama] for d in draws} == {llama.capability}  # rated: never drawn
    central = DiffusionModel(rng=0, n_agents=50, end="2023-01", draw_assumptions=False).release_capability
    assert central[qwen] == qwen.capability


def test_projection_assumptions_are_drawn_in_their_range_unless_given_and_repeat_with_the_seed():
    assert {"cn_lag_months", "price_decline_open", "price_decline_closed", "release_pace"} <= set(
        PROJECTION_ASSUMPTIONS)
    models = [DiffusionModel(rng=seed, n_agents=50, end="2023-01", cn_lag_months=5.0) for seed in range(30)]
    for name in PROJECTION_ASSUMPTIONS:
        low, high = PARAMETERS[name].drawn
        values = [m.base_params[name] for m in models]
        if name == "cn_lag_months":
            assert set(values) == {5.0}  # given explicitly: kept
        else:
            assert all(low <= v <= high for v in values) and len(set(values)) == 30
    again = DiffusionModel(rng=3, n_agents=50, end="2023-01", cn_lag_months=5.0)
    assert again.base_params == models[3].base_params
    fixed = DiffusionModel(rng=3, n_agents=50, end="2023-01", draw_assumptions=False)
    assert all(fixed.base_params[n] == PARAMETERS[n].default for n in PROJECTION_ASSUMPTIONS)


def test_ecosystem_is_bounded_and_reaches_closed_families_and_the_former_form_remains_for_ablations():
    model = DiffusionModel(rng=4, n_agents=400, end="2025-06", ecosystem_half_months=2.0)
    while model.running:
        model.step()
    eco = model.ecosystem()
    assert ((eco >= 0) & (eco < 1)).all()
    gpt = model.family_names.index("GPT")
    assert eco[gpt] > 0.5  # the incumbent's builders have built on it for years
    half = model.builder_months / (model.builder_months + 2.0)
    np.testing.assert_allclose(eco, half)
    old = DiffusionModel(rng=4, n_agents=400, end="2024-06", ecosystem_form="open_log")
    while old.running:
        old.step()
    np.testing.assert_allclose(old.ecosystem(), np.log1p(old.derivatives_cum / 1000) * old.is_open)
    assert old.ecosystem()[gpt] == 0


def test_a_bad_ecosystem_form_is_refused():
    with pytest.raises(ValueError, match="ecosystem_form"):
        DiffusionModel(rng=0, n_agents=50, ecosystem_form="linear")


def test_chinese_origin_penalty_is_a_shared_level_plus_regional_offsets_outside_china_and_restricted_markets():
    base = DiffusionModel(rng=0, n_agents=50, end="2023-01")
    raised = DiffusionModel(rng=0, n_agents=50, end="2023-01", trust_cn_shared=1.25)
    diff = raised.trust_matrix() - base.trust_matrix()
    expected = np.zeros_like(diff)
    for region in TRUST_SHARED_REGIONS:
        expected[REGIONS.index(region), ORIGINS.index("CN")] = 1.25
    np.testing.assert_array_equal(diff, expected)
    assert "china" not in TRUST_SHARED_REGIONS and "restricted" not in TRUST_SHARED_REGIONS


def test_every_firm_weighs_origin_trust_by_the_multiplier_and_developers_do_not():
    """firm_origin_trust (docs/ODD.md 7.4): a non-regulated firm's utility of each family falls by
    (multiplier - 1) x its region's origin penalty for that family (Chinese families outside China, US open ones in
    China) against the former rule, on the same state; developers' and regulated firms' utilities are unchanged."""
    model = DiffusionModel(rng=3, n_agents=200, end="2024-06", trust_cn_shared=1.5, regulated_trust_multiplier=3.0)
    while model.running:
        model.step()
    pop, rows = model.population, np.arange(len(model.population))
    now = model.utility(rows)
    model.base_params["firm_origin_trust"] = False  # the same state, the former rule
    former = model.utility(rows)
    penalty = model.trust_matrix()[:, model.origin][pop.region]  # agent x family
    newly = pop.is_firm & ~pop.regulated
    assert newly.any() and (~pop.is_firm).any() and penalty[newly].max() > 0
    np.testing.assert_allclose(former[newly] - now[newly], 2.0 * penalty[newly], atol=1e-4)
    np.testing.assert_array_equal(former[~newly], now[~newly])


def test_firms_multiply_an_origin_penalty_but_not_a_preference():
    """docs/ODD.md 7.4, trust: with the North American penalty for Chinese families at +1, a North American firm's
    utility of them is 2 (the multiplier) below what it is at 0, a developer's 1; at -1 (a preference) both gain
    exactly 1: security and regulatory concerns (ENT5) add to a penalty, they do not amplify a preference."""
    model = DiffusionModel(rng=3, n_agents=300, end="2025-03", trust_cn_shared=0.0, regulated_trust_multiplier=2.0)
    while model.running:
        model.step()
    pop, rows = model.population, np.arange(len(model.population))
    north_america = pop.region == REGIONS.index("north_america")
    chinese = model.origin == ORIGINS.index("CN")

    def utility_at(penalty: float) -> np.ndarray:
        model.params["trust_cn_north_america"] = penalty
        return model.utility(rows)

    neutral = utility_at(0.0)
    for agents, penalty_weight in ((pop.is_firm & north_america, 2.0), (~pop.is_firm & north_america, 1.0)):
        assert agents.any()
        np.testing.assert_allclose((utility_at(1.0) - neutral)[agents][:, chinese], -penalty_weight, atol=1e-5)
        np.testing.assert_allclose((utility_at(-1.0) - neutral)[agents][:, chinese], 1.0, atol=1e-5)
        np.testing.assert_array_equal(utility_at(-1.0)[agents][:, ~chinese], neutral[agents][:, ~chinese])


def test_spend_task_and_multihoming_observables_agree_with_the_agents_own_views():
    """Recomputed agent by agent through the Mesa views: OpenRouter spend shares by region (and Asia), the closed
    share of marketplace revenue, the programming share of marketplace tokens, Anthropic's share of US firms'
    spend and the share of large US firms using three or more families."""
    model = DiffusionModel(rng=5, n_agents=1500, end="2025-06", marketplace_home_share=0.5)
    while model.running:
        model.step()
    obs = model.observations
    assert sum(obs[f"or_spend_share_{r}"] for r in REGIONS) == pytest.approx(1.0)
    assert obs["or_spend_share_asia"] == pytest.approx(obs["or_spend_share_china"] + obs["or_spend_share_asia_pacific"])
    np.testing.assert_allclose(model.marketplace_by_region.sum(axis=0), model.usage["marketplace"], rtol=1e-5)
    standard, efficient = model.marketplace_tiers_by_region.transpose(1, 0, 2)  # each tier at its own price
    flagship_use = model.marketplace_by_region - standard - efficient
    spend = (flagship_use * model.tier_price_by_region[..., 0] + standard * model.tier_price_by_region[..., 1]
             + efficient * model.tier_price_by_region[..., 2])
    assert efficient.sum() > 0 and standard.sum() > 0
    assert obs["or_revenue_share_closed"] == pytest.approx(spend[:, ~model.is_open].sum() / spend.sum())
    claude = model.family_names.index("Claude")
    us_firms = [a for a in model.users if a.region == "north_america" and a.segment in (
        "sme", "enterprise", "regulated_enterprise")]
    flagship, mid, cheap = model.tier_price_by_region[REGIONS.index("north_america")].T
    firm_spend = np.array([a.weight * ((model.work[a.index] - model.tier_work[a.index].sum(axis=0)) * flagship
                                       + model.tier_work[a.index, 0] * mid + model.tier_work[a.index, 1] * cheap)
                           for a in us_firms]).sum(axis=0)
    assert obs["ent_spend_share_claude"] == pytest.approx(firm_spend[claude] / firm_spend.sum(), rel=1e-5)
    large = [a for a in us_firms if a.segment != "sme" and a.workload]
    three = sum(a.weight for a in large if len(a.workload) >= 3) / sum(a.weight for a in large)
    assert obs["ent_multihoming_3plus"] == pytest.approx(three, rel=1e-6)
    assert 0 < three < 1


def test_observation_scales_have_no_feedback_and_are_solved_back_from_their_level_targets():
    """downloads_scale and derivatives_scale change only the Hugging Face counts, in proportion (so they can be
    solved rather than sampled), and the solver recovers the factor at which level targets were generated; a scale
    with a prior (sampled) is left alone."""
    from dataclasses import replace

    from sim.running.runner import run_member
    from sim.inputs.targets import OBSERVATION_SCALES, load_targets, scale_targets, solve_observation_scales

    base = {"n_agents": 300, "end": "2026-01", "downloads_scale": 1e8, "derivatives_scale": 1e5}
    a = run_member(base, 9).drop(columns="date", errors="ignore")
    b = run_member({**base, "downloads_scale": 4e8, "derivatives_scale": 5e5}, 9).drop(columns="date", errors="ignore")
    downloads = [c for c in a.columns if c.startswith("hf_downloads_cum_")]
    derivatives = [c for c in a.columns if c.startswith("hf_derivatives_cum_")]
    others = [c for c in a.columns if c not in downloads + derivatives]
    np.testing.assert_allclose(b[others].to_numpy(float), a[others].to_numpy(float), rtol=1e-12)  # ratios round
    np.testing.assert_allclose(b[downloads].to_numpy(float), 4 * a[downloads].to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(b[derivatives].to_numpy(float), 5 * a[derivatives].to_numpy(float), rtol=1e-12)

    targets = load_targets()
    truth = {"downloads_scale": 2.5e8, "derivatives_scale": 3e5}
    generated = []
    for name, prefix in OBSERVATION_SCALES.items():
        assert scale_targets(targets, prefix)  # each scale is set by at least one level target
        for t in scale_targets(targets, prefix):
            generated.append(replace(t, value=t.statistic_of(a) * truth[name] / base[name]))
    solved = solve_observation_scales(generated, [a], base)
    assert solved == pytest.approx(truth, rel=1e-4)
    kept = solve_observation_scales(generated, [a], base, sampled=["downloads_scale"])
    assert kept["downloads_scale"] == base["downloads_scale"]
    assert kept["derivatives_scale"] == pytest.approx(truth["derivatives_scale"], rel=1e-4)


def test_each_release_belongs_to_its_labs_premium_standard_or_efficient_line_by_name():
    """The documented rule (catalogue.release_tier, docs/ODD.md 7.9) on named releases: the lab's top line (Opus,
    Ultra, GPT-4.5, the full o-series and -pro variants) is premium, its cheaper marks and small open sizes are
    efficient, the rest standard; a family listing only large models (DeepSeek) is all standard."""
    lines = {r.model: r.tier for r in releases()}
    assert lines["GPT-4o mini"] == lines["Claude 3 Haiku"] == lines["Gemini 2.5 Flash"] == "efficient"
    assert lines["Mistral 7B"] == lines["Qwen3-Next-80B-A3B"] == lines["o3-mini"] == "efficient"
    assert lines["Claude Opus 4"] == lines["Gemini 1.0 Ultra"] == lines["GPT-4.5"] == "premium"
    assert lines["o1-preview"] == lines["o1"] == lines["o3"] == "premium"
    assert lines["Claude Sonnet 4"] == lines["GPT-4o"] == lines["GPT-4.1"] == lines["GPT-5"] == "standard"
    assert lines["Gemini 2.5 Pro"] == lines["Mixtral 8x7B"] == lines["Qwen3-Coder-480B-A35B"] == "standard"
    assert all(r.tier == "standard" for r in releases() if r.family == "DeepSeek")
    assert [release_tier(name) for name in ("o1-pro", "o3-pro", "GPT-5 Pro", "Gemini 2.5 Deep Think")] == [
        "premium"] * 4


def test_families_offer_a_flagship_a_standard_and_an_efficient_tier_from_the_catalogue():
    """In 2025-06 (Opus 4 / Sonnet 4 / 3.5 Haiku; o3 / GPT-4.1 / o4-mini) each cheaper tier is cheaper than the
    flagship and less capable; Gemini's best (2.5 Pro) is its standard line, so it offers no separate standard
    tier; DeepSeek has no cheaper line and offers one tier. Two tiers (standard_tier off) and one (price_tiers off)
    drop the standard tier, then every cheaper tier."""
    model = DiffusionModel(rng=2, n_agents=100, end="2025-06")
    while model.running:
        model.step()
    prices = dict(zip(model.family_names, model.tier_price))
    np.testing.assert_allclose(prices["Claude"], [30.0, 6.0, 2.0])
    np.testing.assert_allclose(prices["GPT"], [17.5, 3.5, (3 * 1.1 + 4.4) / 4])
    for name in ("GPT", "Claude"):
        f = model.family_names.index(name)
        assert model.tier_offered[f].all(), name
        assert np.all(model.tier_capability[f, 1:] < model.tier_capability[f, 0]), name
    gemini, deepseek = model.family_names.index("Gemini"), model.family_names.index("DeepSeek")
    assert model.tier_offered[gemini].tolist() == [False, True]
    assert model.tier_price[gemini, 1] == model.tier_price[gemini, 0]  # not offered: the flagship
    assert not model.tier_offered[deepseek].any()
    assert model.tier_price[deepseek, 2] == model.tier_price[deepseek, 0]
    two = DiffusionModel(rng=2, n_agents=100, end="2025-06", standard_tier=False)
    while two.running:
        two.step()
    assert not two.tier_offered[:, 0].any() and two.tier_offered[:, 1].tolist() == model.tier_offered[:, 1].tolist()
    one = DiffusionModel(rng=2, n_agents=100, end="2025-06", price_tiers=False)
    while one.running:
        one.step()
    assert not one.tier_offered.any() and not one.tier_work.any()
    assert np.all(one.tier_price == one.price[:, None])


def test_without_tiers_spend_is_each_familys_use_at_its_one_price():
    """price_tiers off is the one-tier model: every agent's work sits on the flagship, so spend observables price
    all of a family's use at its single price."""
    model = DiffusionModel(rng=4, n_agents=600, end="2025-06", price_tiers=False)
    while model.running:
        model.step()
    obs, closed = model.observations, ~model.is_open
    spend = model.marketplace_by_region * model.price_by_region
    assert obs["or_price_per_token"] == pytest.approx(spend.sum() / model.usage["marketplace"].sum())
    assert obs["or_revenue_share_closed"] == pytest.approx(spend[:, closed].sum() / spend.sum())
    assert obs["or_efficient_share_closed"] == obs["or_standard_share_closed"] == 0


def test_a_familys_use_splits_over_its_tiers_and_a_dearer_flagship_moves_it_to_the_efficient_tier():
    model = DiffusionModel(rng=5, n_agents=400, end="2025-06")
    while model.running:
        model.step()
    gpt = model.family_names.index("GPT")
    rows = np.arange(len(model.work))
    options = np.broadcast_to(model.released, model.work.shape)

    def efficient_part():
        split = model._work_split(rows, options)
        assert np.all(split[:, 1:].sum(axis=1) <= split[:, 0] + 1e-6)  # the cheaper tiers' parts are the family's
        return split[:, 2, gpt].sum() / split[:, 0, gpt].sum()

    before = efficient_part()
    assert 0.05 < before < 0.95  # both tiers carry GPT's work
    model.price_by_region[:, gpt] *= 4  # the flagship four times dearer; the efficient tier's price unchanged
    model.tier_price_by_region[:, gpt, 0] *= 4
    assert efficient_part() > before + 0.05
    # Per-family observables sum the tiers: the marketplace share of GPT counts all three.
    assert model.usage["marketplace_tiers"][:, gpt].sum() < model.usage["marketplace"][gpt]
