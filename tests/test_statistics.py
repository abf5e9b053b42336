"""Ensemble statistics (sim/statistics.py) on small hand-made tables whose answers can be worked out by hand."""

import numpy as np
import pandas as pd

from sim.statistics import largest_monthly_move, nan_quantiles


def _frame(values: dict[str, list[float]], start_month: int = 1) -> pd.DataFrame:
    rows = []
    for metric, series in values.items():
        for i, v in enumerate(series):
            rows.append({"metric": metric, "date": f"2024-{start_month + i:02d}", "q50": v})
    return pd.DataFrame(rows)


def test_largest_monthly_move_finds_the_biggest_jump_inside_the_window_only():
    table = _frame({"or_share_open": [0.10, 0.12, 0.30, 0.28, 0.90], "other": [0, 1, 0, 1, 0]})
    move, month = largest_monthly_move(table, "or_share_open", "2024-01", "2024-04")
    assert np.isclose(move, 0.18) and month == "2024-03"  # the 0.62 jump into 2024-05 lies outside the window
    move, month = largest_monthly_move(table, "or_share_open", "2024-01", "2024-05")
    assert np.isclose(move, 0.62) and month == "2024-05"


def test_largest_monthly_move_counts_falls_as_moves():
    move, month = largest_monthly_move(_frame({"m": [0.5, 0.1, 0.2]}), "m", "2024-01", "2024-12")
    assert np.isclose(move, 0.4) and month == "2024-02"


def test_nan_quantiles_ignore_missing_members():
    stack = np.array([[1.0], [np.nan], [3.0]])
    (median,) = nan_quantiles(stack, [0.5])
    assert median[0] == 2.0
