"""The explorer's model and views without a browser: parameters, scenario handling, charts, `odsim viz` input."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from mesa.visualization.solara_viz import _check_model_params

import sim.app as app
from sim.app import SLIDERS, ExploreModel, model_params, scenario_files, slider_start
from sim.figures.explorer_views import MAX_NETWORK_NODES, VIEWS, network_sample, primary_categories, render_views
from sim.cli import main
from sim.inputs.scenario import load_scenario

PNG = b"\x89PNG\r\n\x1a\n"


def small(**kwargs) -> ExploreModel:
    return ExploreModel(**{"n_agents": 600, **kwargs})


def test_inputs_match_the_model_signature_and_the_scenario_folder():
    params = model_params()
    _check_model_params(small(), params)  # what SolaraViz checks before it builds the page
    assert set(SLIDERS) | {"scenario_name", "n_agents", "seed"} == set(params)
    files = sorted(p.stem for p in app.SCENARIO_DIR.glob("*.toml"))
    assert sorted(params["scenario_name"]["values"]) == files
    assert params["scenario_name"]["value"] == "baseline"


def test_sliders_start_at_the_posterior_median_rounded_to_their_step(monkeypatch):
    monkeypatch.setattr(app, "posterior_median", lambda: {"price_sensitivity": 1.2345, "peer_weight": 2.0})
    start = slider_start()
    assert start["price_sensitivity"] == pytest.approx(1.23)
    assert start["peer_weight"] == 2.0
    model = small()
    assert model.base_params["price_sensitivity"] == pytest.approx(1.23)
    assert model.base_params["peer_weight"] == 2.0


def test_sliders_win_over_the_scenario_and_its_shocks_still_apply(tmp_path, monkeypatch):
    (tmp_path / "strict.toml").write_text(
        'name = "strict"\n[parameters]\ntrust_cn_europe = 4.0\nmean_degree = 5.0\n'
        '[[shock]]\ndate = "2023-03"\nset = { trust_cn_europe = 5.0 }\n')
    monkeypatch.setattr(app, "SCENARIO_DIR", tmp_path)
    model = small(scenario_name="strict", trust_cn_europe=2.5)
    assert model.base_params["trust_cn_europe"] == 2.5
    assert model.base_params["mean_degree"] == 5.0  # scenario parameters without a slider are kept
    assert model.overridden == {"trust_cn_europe": 4.0}
    assert len(model.shocks) == 1
    for _ in range(2):
        model.step()
    assert model.params["trust_cn_europe"] == 5.0  # the dated shock takes over from 2023-03


def test_scenario_and_seed_reach_the_model():
    bans = small(scenario_name="security_bans", seed=3)
    assert bans.shocks == load_scenario(app.SCENARIO_DIR / "security_bans.toml").shocks
    again, other = small(seed=3), small(seed=4)
    for model in (again, other):
        for _ in range(6):
            model.step()
    twin = small(seed=3)
    for _ in range(6):
        twin.step()
    assert np.array_equal(again.work, twin.work)
    assert not np.array_equal(again.work, other.work)


def test_broken_scenario_files_are_listed_not_offered(tmp_path):
    (tmp_path / "good.toml").write_text('name = "good"\n')
    (tmp_path / "bad.toml").write_text('name = "bad"\n[parameters]\nprice_sensitivity = 99.0\n')
    good, bad = scenario_files(tmp_path)
    assert list(good) == ["good"]
    assert "bad.toml" in bad and "price_sensitivity" in bad["bad.toml"]


def test_network_view_samples_at_most_the_cap():
    big = ExploreModel(n_agents=5000)
    sample = network_sample(big)
    assert len(sample.nodes) == MAX_NETWORK_NODES == len(np.unique(sample.nodes))
    assert len(sample.edges) == big.graph[sample.nodes][:, sample.nodes].nnz // 2
    little = small()
    assert len(network_sample(little).nodes) == 600


def test_agents_are_coloured_by_their_main_models_origin_and_openness():
    model = small()
    for _ in range(30):
        model.step()
    pairs, category = primary_categories(model)
    assert ("US", False) in pairs and ("CN", True) in pairs
    users = np.flatnonzero(model.work.sum(axis=1) > 0)
    for i in users[:50]:
        family = model.families[int(np.argmax(model.work[i]))]
        assert pairs[category[i]] == (family.origin, family.open_weights)
    assert (category[model.work.sum(axis=1) == 0] == -1).all()


@pytest.mark.slow
def test_views_render_and_change_with_each_step():
    model = small()
    first = render_views(model)
    assert set(first) == set(VIEWS) and all(png.startswith(PNG) for png in first.values())
    model.step()
    second = render_views(model)
    assert all(second[name] != first[name] for name in VIEWS)
    downloads_axis = model._views["huggingface"].axes[0]
    top = downloads_axis.get_ylim()[1]
    for _ in range(30):
        model.step()
    render_views(model)
    assert downloads_axis.get_ylim()[1] > top  # the axis grew to fit the cumulative downloads
    lines = model._views["huggingface"].lines
    highest = max(line.get_ydata().max() for line, _ in lines)
    assert 0 < highest <= downloads_axis.get_ylim()[1]


@pytest.mark.slow
def test_every_chart_has_a_legend_and_labelled_axes():
    model = small()
    render_views(model)
    for name, view in model._views.items():
        axes = view.fig.get_axes()
        assert any(ax.get_legend() is not None for ax in axes), name
        if name == "network":
            continue
        for ax in axes:
            assert ax.get_ylabel(), name
        assert axes[-1].get_xlabel() == "month", name


def test_viz_refuses_a_port_in_use(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["viz", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--port {port}" in err and "choose another --port" in err


def test_viz_refuses_a_port_out_of_range(capsys):
    assert main(["viz", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "[1, 65535], got 70000" in err
