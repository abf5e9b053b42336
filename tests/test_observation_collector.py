"""observe.ObservationCollector fills the same table as Mesa's generic DataCollector with the same reporters."""

import mesa
import pandas as pd

from sim import DiffusionModel
from sim.core import observe


def test_collector_table_equals_mesas_datacollector():
    model = DiffusionModel(rng=4, n_agents=300, end="2023-09")
    reference = mesa.DataCollector(model_reporters=observe.model_reporters())
    reference.collect(model)
    while model.running:
        model.step()
        reference.collect(model)
    ours = model.datacollector.get_model_vars_dataframe()
    assert len(ours) == 9 and ours.notna().any(axis=None)
    pd.testing.assert_frame_equal(ours, reference.get_model_vars_dataframe(), check_exact=True)
