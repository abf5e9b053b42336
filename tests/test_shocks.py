"""Dated shocks: ramps, family effects and their effect on the labs."""

import pytest

from sim import DiffusionModel
from sim.core.calendar import parse_month
from sim.core.checks import InputError
from sim.core.parameters import defaults
from sim.core.shocks import effective_parameters, family_modifiers, parse_shock


def test_set_shock_ramps_linearly_from_base_to_target():
    shock = parse_shock({"date": "2026-01", "until": "2026-04", "set": {"cn_lag_months": 15}})
    base = defaults()
    values = [effective_parameters(base, (shock,), parse_month(m))["cn_lag_months"]
              for m in ("2025-12", "2026-01", "2026-02", "2026-04", "2030-01")]
    assert values == pytest.approx([7, 9, 11, 15, 15])


def test_family_effects_apply_only_to_selected_families_and_multiply():
    closed_us = parse_shock({"date": "2026-01", "families": {"origin": "US", "open_weights": False},
                             "price_factor": 0.5})
    gpt_only = parse_shock({"date": "2026-01", "families": {"names": ["GPT"]}, "price_factor": 0.5,
                            "licence": "closed"})
    month = parse_month("2027-01")
    assert family_modifiers((closed_us, gpt_only), "GPT", month)["price_factor"] == pytest.approx(0.25)
    assert family_modifiers((closed_us, gpt_only), "Claude", month)["price_factor"] == pytest.approx(0.5)
    assert family_modifiers((closed_us, gpt_only), "Qwen", month)["price_factor"] == 1.0
    assert family_modifiers((closed_us,), "GPT", parse_month("2025-12"))["price_factor"] == 1.0


def test_lab_prices_and_capability_follow_family_shocks():
    shocks = (parse_shock({"date": "2025-01", "families": {"names": ["Qwen"]}, "price_factor": 0.1,
                           "capability_shift": 5.0}),)
    plain, shocked = DiffusionModel(rng=1, n_agents=200, end="2025-03"), DiffusionModel(
        rng=1, n_agents=200, end="2025-03", shocks=shocks)
    for model in (plain, shocked):
        while model.running:
            model.step()
    qwen = plain.family_names.index("Qwen")
    assert shocked.price[qwen] == pytest.approx(plain.price[qwen] * 0.1)
    assert shocked.capability[qwen] == pytest.approx(plain.capability[qwen] + 5.0)


@pytest.mark.parametrize("spec, key", [
    ({"date": "2026-01"}, "shock"),
    ({"date": "2026-01", "price_factor": 0.5}, "price_factor"),
    ({"date": "2026-01", "set": {"n_agents": 10}}, "set.n_agents"),
    ({"date": "2026-01", "until": "2025-01", "set": {"cn_lag_months": 9}}, "until"),
    ({"date": "2026-01", "families": {"origin": "JP"}, "price_factor": 0.5}, "families.origin"),
    ({"date": "2026-01", "families": {"origin": "CN"}, "licence": "copyleft"}, "licence"),
    ({"date": "2026-01", "ban": {"origin": "CN", "segments": ["students"]}}, "ban.segments"),
    ({"set": {"cn_lag_months": 9}}, "date"),
])
def test_invalid_shocks_name_the_key(spec, key):
    with pytest.raises(InputError) as err:
        parse_shock(spec)
    assert err.value.key == key
