"""DiffusionModel stays usable with mesa.batch_run: flat keyword parameters plus `rng`, rows of observables."""

from __future__ import annotations

import mesa
import pandas as pd

from sim.core.model import DiffusionModel
from sim.core.observe import metric_names


def test_mesa_batch_run_runs_the_model_and_returns_observables():
    rows = mesa.batch_run(
        DiffusionModel,
        parameters={"n_agents": 80, "end": "2023-06", "price_sensitivity": [0.2, 2.0]},
        rng=[1, 2],
        data_collection_period=1,
        number_processes=1,
        display_progress=False,
    )
    table = pd.DataFrame(rows)
    # 2 parameter values x 2 seeds x 6 months (2023-01 to 2023-06)
    assert len(table) == 2 * 2 * 6
    assert set(table.price_sensitivity) == {0.2, 2.0} and set(table.rng) == {1, 2}
    assert set(metric_names()) <= set(table.columns)
    assert table.groupby(["price_sensitivity", "rng"]).date.apply(list).map(
        lambda dates: dates == [f"2023-0{m}" for m in range(1, 7)]).all()
    assert table.or_share_open.between(0, 1).all()
    # batch_run gives the same numbers as driving the model by hand with the same seed
    model = DiffusionModel(rng=2, n_agents=80, end="2023-06", price_sensitivity=2.0)
    while model.running:
        model.step()
    by_hand = model.datacollector.get_model_vars_dataframe()
    mine = table[(table.price_sensitivity == 2.0) & (table.rng == 2)].reset_index(drop=True)
    pd.testing.assert_series_equal(mine.or_share_cn, by_hand.or_share_cn.reset_index(drop=True),
                                   check_names=False)
