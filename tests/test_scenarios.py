"""Shipped scenario files, scenario composition and the shock-language extensions (add, scale, regional prices)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.checks import InputError
from sim.cli import main
from sim.core.model import DiffusionModel
from sim.core.parameters import PARAMETERS
from sim.core.population import REGIONS
from sim.running.project import available, load_spec
from sim.inputs.scenario import SCENARIO_DIR, load_scenario
from sim.core.shocks import effective_parameters, family_modifiers, parse_shock, regional_price_factors

REQUIRED = ["baseline", "export_controls_tighten", "export_controls_relax", "us_open_push", "security_bans",
            "closed_price_war", "closed_frontier_leap", "licence_tightening", "global_south_access"]


def test_the_issue_scenarios_are_shipped():
    assert set(REQUIRED) <= set(available())
    assert available()[0] == "baseline"


@pytest.mark.parametrize("name", available())
def test_every_shipped_file_is_valid_and_documented(name):
    path = SCENARIO_DIR / f"{name}.toml"
    scenario = load_scenario(path)  # raises InputError on any invalid key
    assert scenario.name == name, "the name key must match the file name (it names the output folder)"
    own = load_spec(name)
    assert len(own.description.split()) >= 15, "a narrative a policy analyst can read"
    assert len(own.rationale.split()) >= 15, "why the premises are plausible"
    assert own.sources, "sources or named assumptions"
    for source in own.sources:
        if source.startswith("ASSUMPTION"):
            assert "range" in source, f"{name}: an ASSUMPTION must state its range: {source!r}"
    if name != "baseline":
        assert str(SCENARIO_DIR / "baseline.toml") in own.files, "scenarios build on baseline"
        assert own.shocks or own.parameters, "a scenario must change something relative to baseline"


def test_plus_composes_like_an_includes_file():
    by_plus = load_spec("security_bans+us_open_push")
    by_file = load_spec("bans_with_us_open_push")
    assert by_plus.name == "security_bans+us_open_push"
    assert by_plus.shocks == by_file.shocks
    assert by_plus.parameters == by_file.parameters
    bans, push = load_spec("security_bans"), load_spec("us_open_push")
    assert set(by_plus.shocks) == set(bans.shocks) | set(push.shocks)
    assert len(by_plus.shocks) == len(bans.shocks) + len(push.shocks)


def test_a_shock_reached_through_two_includes_counts_once(tmp_path):
    (tmp_path / "a.toml").write_text('name = "a"\n[[shock]]\ndate = "2026-01"\nfamilies = { origin = "CN" }\n'
                                     'price_factor = 0.5\n')
    (tmp_path / "b.toml").write_text('name = "b"\nincludes = ["a.toml"]\n')
    (tmp_path / "c.toml").write_text('name = "c"\nincludes = ["a.toml"]\n')
    (tmp_path / "d.toml").write_text('name = "d"\nincludes = ["b.toml", "c.toml"]\n')
    assert len(load_scenario(tmp_path / "d.toml").shocks) == 2  # plain composition adds both copies
    composed = load_spec(str(tmp_path / "d.toml"))
    assert len(composed.shocks) == 1
    assert family_modifiers(composed.shocks, "Qwen", 24_400)["price_factor"] == pytest.approx(0.5)


def test_unknown_scenario_name_is_refused():
    with pytest.raises(InputError, match="no such scenario; available: baseline"):
        load_spec("no_such_scenario")
    with pytest.raises(InputError, match="empty name"):
        load_spec("security_bans+")


# --- shock language extensions ----------------------------------------------------------------------------------
def month(label: str) -> int:
    year, m = label.split("-")
    return int(year) * 12 + int(m) - 1


def test_add_and_scale_are_relative_to_the_run_value_and_ramp():
    shock = parse_shock({"date": "2026-01", "until": "2026-04", "add": {"trust_cn_europe": 1.0},
                         "scale": {"price_sensitivity": 2.0}})
    for base_trust, base_price in ((1.0, 0.3), (2.5, 1.0)):  # e.g. two posterior draws
        base = {"trust_cn_europe": base_trust, "price_sensitivity": base_price}
        before = effective_parameters(base, (shock,), month("2025-12"))
        halfway = effective_parameters(base, (shock,), month("2026-02"))
        done = effective_parameters(base, (shock,), month("2026-09"))
        assert before == base
        assert halfway["trust_cn_europe"] == pytest.approx(base_trust + 0.5)
        assert halfway["price_sensitivity"] == pytest.approx(base_price * 1.5)
        assert done["trust_cn_europe"] == pytest.approx(base_trust + 1.0)
        assert done["price_sensitivity"] == pytest.approx(base_price * 2.0)


def test_relative_changes_stay_in_the_allowed_range():
    low = PARAMETERS["trust_cn_global_south"].low
    shock = parse_shock({"date": "2026-01", "add": {"trust_cn_global_south": -5.0}})  # below the offset range
    assert effective_parameters({"trust_cn_global_south": 0.2}, (shock,), month("2026-01"))[
        "trust_cn_global_south"] == low


def test_regional_price_changes_only_their_regions():
    shock = parse_shock({"date": "2026-01", "until": "2026-02", "families": {"origin": "CN"},
                         "regions": ["global_south"], "price_factor": 0.5})
    names = ["GPT", "Qwen", "DeepSeek"]
    factors = regional_price_factors((shock,), names, month("2026-01"))
    gs = REGIONS.index("global_south")
    assert factors[gs].tolist() == [1.0, 0.75, 0.75]  # halfway through the ramp
    assert np.all(np.delete(factors, gs, axis=0) == 1.0)
    assert family_modifiers((shock,), "Qwen", month("2026-06"))["price_factor"] == 1.0  # not a global change


def test_regional_price_reaches_the_agents_choice():
    shock = parse_shock({"date": "2023-01", "families": {"origin": "CN"}, "regions": ["global_south"],
                         "price_factor": 0.2})
    plain = DiffusionModel(rng=3, n_agents=300, end="2023-02")
    cheap = DiffusionModel(rng=3, n_agents=300, end="2023-02", shocks=(shock,))
    cn = np.array([f in ("Qwen", "DeepSeek", "Kimi", "GLM", "MiniMax") for f in cheap.family_names])
    gs = REGIONS.index("global_south")
    assert np.allclose(cheap.price_by_region[gs, cn], 0.2 * plain.price_by_region[gs, cn])
    assert np.allclose(np.delete(cheap.price_by_region, gs, axis=0), np.delete(plain.price_by_region, gs, axis=0))
    rows = np.flatnonzero(cheap.population.region == gs)
    others = np.flatnonzero(cheap.population.region != gs)
    gain = cheap.utility(rows) - plain.utility(rows)
    assert np.all(gain[:, cn] > 0) and np.allclose(gain[:, ~cn], 0)
    assert np.allclose(cheap.utility(others), plain.utility(others))


@pytest.mark.parametrize("spec, key, message", [
    ({"date": "2026-01", "add": {"n_agents": 10}}, "add.n_agents", "not a parameter a shock can change"),
    ({"date": "2026-01", "add": {"trust_cn_europe": 99}}, "add.trust_cn_europe", "must be a number in"),
    ({"date": "2026-01", "scale": {"trust_cn_europe": -1}}, "scale.trust_cn_europe", "must be a number in"),
    ({"date": "2026-01", "scale": {}}, "scale", "must be a table"),
    ({"date": "2026-01", "regions": ["europe"]}, "regions", "needs 'families' and 'price_factor'"),
    ({"date": "2026-01", "families": {"origin": "CN"}, "capability_shift": 2, "regions": ["europe"]}, "regions",
     "limits a price change only"),
    ({"date": "2026-01", "families": {"origin": "CN"}, "price_factor": 0.5, "regions": ["mars"]}, "regions",
     "unknown value 'mars'"),
])
def test_bad_shocks_name_the_key(spec, key, message):
    with pytest.raises(InputError, match=message) as err:
        parse_shock(spec)
    assert err.value.key == key


def test_bad_scenario_file_on_the_command_line_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nincludes = ["%s"]\n[[shock]]\ndate = "2026-01"\nscale = { trust_cn_europe = '
                   '"high" }\n' % (SCENARIO_DIR / "baseline.toml"))
    out = tmp_path / "out"
    assert main(["project", str(bad), "--out", str(out), "--members", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.toml" in err[0] and "scale.trust_cn_europe" in err[0]
    assert not out.exists()
    assert main(["project", "nonexistent", "--out", str(out)]) == 2
    assert "no such scenario" in capsys.readouterr().err
    assert main(["project", "baseline", "--members", "0", "--out", str(out)]) == 2
    assert "--members" in capsys.readouterr().err
    assert not out.exists()
