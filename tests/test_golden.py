"""Stored-output regression: each golden case's table must equal the stored one to the last bit that CSV keeps
(17 significant digits). A failure means the model's numbers moved; if that was intended, regenerate the tables
(tests/golden_cases.py) and say in the commit what moved and why."""

import numpy as np
import pandas as pd
import pytest

from golden_cases import cases, golden_path, run_case


@pytest.mark.parametrize("name", list(cases()))
def test_golden_table_unchanged(name):
    stored = pd.read_csv(golden_path(name), index_col="date")
    fresh = run_case(name)
    assert list(fresh.columns) == list(stored.columns), "observables added, removed or reordered"
    assert list(fresh.index) == list(stored.index), "months changed"
    for column in stored.columns:
        expected = stored[column].to_numpy(dtype=float)
        got = fresh[column].to_numpy(dtype=float)
        np.testing.assert_array_equal(got, expected, err_msg=f"{name}: {column} drifted")
