"""tools/price_decline_estimate.py: the evidence behind the drawn price declines (docs/ODD.md 7.12)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.parameters import PARAMETERS

TOOL = Path(__file__).resolve().parents[1] / "tools" / "price_decline_estimate.py"
_spec = importlib.util.spec_from_file_location("price_decline_estimate", TOOL)
estimate = sys.modules["price_decline_estimate"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(estimate)

FALLS = {"open": 0.4, "closed": 0.1}  # the synthetic catalogue's yearly falls along every line
ECI_PREMIUM = 0.1  # log price per ECI point in the fixed-capability case


def synthetic_catalogue(path: Path, eci_premium: float = 0.0) -> Path:
    """Two families a side, each with a standard and an efficient ("mini") line whose prices fall at the side's rate
    (times an ECI premium), plus an unpriced release and one whose note flags a later price (a wild value)."""
    rows = []
    for side, fall in FALLS.items():
        for family, level in ((f"{side}A", 10.0), (f"{side}B", 3.0)):
            for line, factor in (("Large", 1.0), ("Mini", 0.1)):
                for k, date in enumerate(("2024-02-10", "2024-11-03", "2025-06-20")):
                    years = (pd.Timestamp(date) - estimate.END).days / 365.25
                    eci = 120 + 5 * years + (2 if k % 2 else -2)
                    price = level * factor * (1 - fall) ** years * np.exp(eci_premium * eci)
                    rows.append(dict(family=family, model=f"{family} {line} {k}", release_date=date, eci=eci,
                                     weights_open="yes" if side == "open" else "no", price_note="",
                                     api_price_in_usd_per_mtok=price, api_price_out_usd_per_mtok=price))
    rows.append({**rows[0], "model": "openA Large 9", "api_price_in_usd_per_mtok": None})
    rows.append({**rows[0], "model": "openA Large 8", "price_note": "may be post-launch price",
                 "api_price_in_usd_per_mtok": 1e6, "api_price_out_usd_per_mtok": 1e6})
    pd.DataFrame(rows).to_csv(path / "catalogue.csv", index=False)
    return path / "catalogue.csv"


def test_recovers_each_sides_fall_along_lines_without_unpriced_or_flagged_rows(tmp_path):
    table = estimate.priced_releases(synthetic_catalogue(tmp_path))
    assert len(table) == 24 and table["line"].nunique() == 8
    slopes = estimate.date_slopes(table)
    for side, fall in FALLS.items():
        assert abs(estimate.fall(slopes[side]) - fall) < 1e-9
    assert abs(slopes["gap"] - (np.log(0.6) - np.log(0.9))) < 1e-9
    assert estimate.fall(slopes["closed"]) < estimate.fall(slopes["pooled"]) < estimate.fall(slopes["open"])


def test_fixed_capability_slopes_take_out_the_eci_premium(tmp_path):
    table = estimate.priced_releases(synthetic_catalogue(tmp_path, ECI_PREMIUM))
    along_lines, fixed = estimate.date_slopes(table), estimate.date_slopes(table, with_eci=True)
    for side, fall in FALLS.items():
        assert abs(estimate.fall(fixed[side]) - fall) < 1e-9
        assert along_lines[side] > fixed[side]  # capability rising along a line props its price up


def test_bootstrap_resamples_whole_families_and_a_missing_side_has_no_slope(tmp_path):
    """Whole families: the exact synthetic falls come back in every resample; a side no resample can see gives NaN,
    not a slope of 0 (a fall of nothing)."""
    table = estimate.priced_releases(synthetic_catalogue(tmp_path))
    closed_only = table[table["side"] == "closed"]
    for unit in ("family", "release"):
        boots = estimate.bootstrap(closed_only, unit, 20, np.random.default_rng(3), with_eci=False)
        assert boots["open"].isna().all() and boots["gap"].isna().all()
        np.testing.assert_allclose(estimate.fall(boots["closed"]), FALLS["closed"], atol=1e-9)
    boots = estimate.bootstrap(table, "family", 40, np.random.default_rng(3), with_eci=False)
    np.testing.assert_allclose(estimate.fall(boots["open"].dropna()), FALLS["open"], atol=1e-9)
    assert boots["open"].notna().sum() > 25


def test_drawn_range_holds_the_catalogues_pooled_estimate():
    """The default is the catalogue's pooled fall rounded to 0.05; both sides share one drawn range around it."""
    pooled = estimate.fall(estimate.date_slopes(estimate.priced_releases(estimate.CATALOGUE_CSV))["pooled"])
    for side in FALLS:
        p = PARAMETERS[f"price_decline_{side}"]
        assert p.default == round(pooled * 20) / 20 and p.drawn[0] < pooled < p.drawn[1]
    assert PARAMETERS["price_decline_open"].drawn == PARAMETERS["price_decline_closed"].drawn
