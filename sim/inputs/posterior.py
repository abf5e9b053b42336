"""The calibration posterior as the default source of behavioural parameters.

calibration/posterior.csv holds weighted parameter sets: one column per fitted parameter (names from
sim.core.parameters.BEHAVIOURAL or any other parameter) and a `weight` column. When it exists, ensembles draw member k's
parameters from it (a fixed weighted resample, so member k gets the same set in every scenario: paired runs),
and single runs (the browser view) use the weighted median. Without it, hand-set defaults apply.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from sim.core.parameters import PARAMETERS, check_value
from sim.statistics import weighted_quantiles

POSTERIOR_CSV = Path(__file__).resolve().parents[2] / "calibration" / "posterior.csv"
RESAMPLE_SEED = 20260122


@cache
def _load(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    unknown = [c for c in table.columns if c != "weight" and c not in PARAMETERS]
    if unknown or "weight" not in table.columns or table.empty:
        raise ValueError(f"{path}: columns must be parameter names plus 'weight'; unexpected: {unknown}")
    table["weight"] = table["weight"] / table["weight"].sum()
    return table


def clear_cache() -> None:
    """Forget the tables read so far, so the next load reads the file again (calibration has just rewritten it)."""
    _load.cache_clear()


def load_posterior(path: Path = POSTERIOR_CSV) -> pd.DataFrame | None:
    """The weighted parameter sets, or None when calibration has not been run."""
    return _load(Path(path))


def describe_source(path: Path = POSTERIOR_CSV) -> str:
    table = load_posterior(path)
    if table is None:
        return "hand-set defaults (sim/core/parameters.py); no calibration/posterior.csv"
    return f"calibration posterior ({path.name}, {len(table)} weighted sets)"


def draw_row(table: pd.DataFrame, k: int) -> int:
    """Row of the posterior table that member k uses: a fixed weighted resample, the same in every scenario."""
    return int(np.random.default_rng([RESAMPLE_SEED, k]).choice(len(table), p=table["weight"].to_numpy()))


def parameter_sets(path: Path = POSTERIOR_CSV) -> Callable[[int], dict[str, Any]] | None:
    """Member k -> its parameter set drawn from the posterior; None without a posterior."""
    table = load_posterior(path)
    if table is None:
        return None
    params = [c for c in table.columns if c != "weight"]
    values = table[params].to_numpy()

    def draw(k: int) -> dict[str, Any]:
        row = draw_row(table, k)
        return {name: check_value(name, PARAMETERS[name].kind(v)) for name, v in zip(params, values[row])}

    return draw


def provenance(members: int, path: Path = POSTERIOR_CSV) -> dict[str, Any]:
    """What a run's manifest records about the parameter sets it used: the posterior file, its SHA-256 and the
    row each member drew (members 0..members-1), so a result can be traced to the exact sets behind it even after
    a new calibration is adopted."""
    table = load_posterior(path)
    if table is None:
        return {"source": describe_source(path)}
    return {"source": describe_source(path), "file": str(path),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "draw_rows": [draw_row(table, k) for k in range(members)]}


def posterior_median(path: Path = POSTERIOR_CSV) -> dict[str, Any]:
    """Weighted median of each fitted parameter ({} without a posterior), by the rule the calibration report uses."""
    table = load_posterior(path)
    if table is None:
        return {}
    weights = table["weight"].to_numpy()
    medians = {name: weighted_quantiles(table[name].to_numpy(), weights, [0.5])[0]
               for name in table.columns if name != "weight"}
    return {name: check_value(name, PARAMETERS[name].kind(value)) for name, value in medians.items()}
