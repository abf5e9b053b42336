"""Evidence for `price_decline_open` and `price_decline_closed` (docs/ODD.md 7.1, 7.12): how fast list prices fell
in the release catalogue, open and closed releases apart.

    .venv/bin/python tools/price_decline_estimate.py [--bootstrap 1000] [--seed 0]

After the catalogue, a family's tiers keep their price and fall at the side's yearly rate while new releases raise
their capability at the frontier's pace (sim/core/agents.py `Lab.step`). The catalogue's counterpart is the price
trend along a family's line (release_tier: premium, standard, efficient) as successive releases come out: log
blended list price (catalogue.blended_price) regressed on the release date within each family, side and line, with
one date slope per side. Only first-party prices at release are used: open releases without one have none, and the
rows whose `price_note` says the price may be a later one (FLAGGED) are left out, as a later cut on an early release
reads as a rise along its line. A price at a
fixed capability (adding the rated ECI to the regression) falls faster by the capability premium the model adds
through `frontier_growth`, so it is not the rate to draw; its side gap is printed as a second reading of the gap,
which is what drifts the shares. Intervals: bootstrap over families (releases of a family share their lab's
pricing) and over releases.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.core.catalogue import CATALOGUE_CSV, blended_price, release_tier  # noqa: E402

END = pd.Timestamp("2026-01-01")  # the catalogue's end: dates are in years before it
FLAGGED = "post-launch|launch pricing"  # price_note: not the price at release (model-catalogue.md, known gaps)


def priced_releases(path: Path) -> pd.DataFrame:
    """Releases with a first-party price at release: side, line, years before 2026-01, log blended price."""
    table = pd.read_csv(path)
    table["log_price"] = np.log(blended_price(table["api_price_in_usd_per_mtok"], table["api_price_out_usd_per_mtok"]))
    table = table[table["log_price"].notna() & ~table["price_note"].str.contains(FLAGGED, na=False)].copy()
    table["side"] = np.where(table["weights_open"] == "yes", "open", "closed")
    table["years"] = (pd.to_datetime(table["release_date"], format="mixed") - END).dt.days / 365.25
    table["line"] = table["family"] + "/" + table["side"] + "/" + table["model"].map(release_tier)
    return table


def date_slopes(table: pd.DataFrame, with_eci: bool = False) -> dict[str, float]:
    """Within-line least squares of log price on date, one slope per side and one pooled (log points a year); with
    `with_eci`, on the rated releases with the ECI as a regressor (price at a fixed capability)."""
    if with_eci:
        table = table[table["eci"].notna()]
    columns = ["years", "log_price", "eci"]
    centred = table[columns] - table.groupby("line")[columns].transform("mean")
    is_open = (table["side"] == "open").to_numpy()
    years = centred["years"].to_numpy()
    extra = [centred["eci"].to_numpy()] if with_eci else []
    y = centred["log_price"].to_numpy()
    x = np.column_stack([years * is_open, years * ~is_open, *extra])
    by_side = np.linalg.lstsq(x, y, rcond=None)[0]
    by_side[:2][(x[:, :2] ** 2).sum(axis=0) == 0] = np.nan  # a side with no line of two releases has no slope
    pooled = np.linalg.lstsq(np.column_stack([years, *extra]), y, rcond=None)[0]
    return {"open": by_side[0], "closed": by_side[1], "gap": by_side[0] - by_side[1], "pooled": pooled[0]}


def bootstrap(table: pd.DataFrame, unit: str, draws: int, rng: np.random.Generator, with_eci: bool) -> pd.DataFrame:
    """date_slopes on resamples of `unit` ("family": whole families, each copy its own lines; "release")."""
    out, by_family = [], dict(tuple(table.groupby("family")))
    for _ in range(draws):
        if unit == "release":
            sample = table.iloc[rng.integers(0, len(table), len(table))]
        else:
            names = rng.choice(list(by_family), len(by_family))
            sample = pd.concat([by_family[f].assign(line=by_family[f]["line"] + f"#{k}") for k, f in enumerate(names)])
        out.append(date_slopes(sample, with_eci))
    return pd.DataFrame(out)


def fall(slope: float) -> float:
    """Yearly fractional fall of a price whose log changes by `slope` a year (negative: a rise)."""
    return 1 - np.exp(slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE_CSV)
    a = parser.parse_args()
    table = priced_releases(a.catalogue)
    multi = table[table.groupby("line")["years"].transform("size") >= 2]
    for side, part in multi.groupby("side"):
        print(f"{side}: {len(part)} priced releases on {part['line'].nunique()} lines of {part['family'].nunique()} "
              f"families with two or more")
    rng = np.random.default_rng(a.seed)
    for with_eci, title in ((False, "price along a family's line (the model's rate)"),
                            (True, "price at a fixed ECI (rated releases; the gap only is comparable)")):
        estimate = date_slopes(table, with_eci)
        boots = {u: bootstrap(table, u, a.bootstrap, rng, with_eci) for u in ("family", "release")}
        print(f"\n{title}: yearly fall, 90% bootstrap over families | over releases ({a.bootstrap} resamples)")
        for key in ("open", "closed", "pooled"):
            spans = " | ".join(f"{fall(b[key].quantile(0.95)):+.2f} to {fall(b[key].quantile(0.05)):+.2f}"
                               for b in boots.values())
            print(f"  {key:7s} {fall(estimate[key]):+.2f}   ({spans})")
        spans = " | ".join(f"{b['gap'].quantile(0.05):+.2f} to {b['gap'].quantile(0.95):+.2f}" for b in boots.values())
        share = " | ".join(f"{(b['gap'].dropna() < 0).mean():.2f}" for b in boots.values())
        print(f"  gap, open minus closed log slope {estimate['gap']:+.2f} a year ({spans}); "
              f"share of resamples with open falling faster {share}")


if __name__ == "__main__":
    main()
