"""Helpers and fixtures shared by several test modules, so that no test module imports another: small sweep specs,
small calibration configs, comparisons of result folders, and an instrumented release catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.core import catalogue
from sim.inputs.scenario import SCENARIO_DIR

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "calibration" / "config.toml"


# --- sweep specs --------------------------------------------------------------------------------------------------
TINY = """\
name = "{name}"
scenario = "{scenario}"
design = "{design}"
{samples}
replicates = {replicates}
seed = 3
months = {months}
observables = ["or_share_cn", "or_share_open"]

[fixed]
n_agents = {agents}
end = "{end}"

[parameters]
{parameters}
"""


def write_spec(folder: Path, name="tiny", design="lhs", samples=6, replicates=2, agents=200, end="2024-06",
               months='["2023-12", "2024-06"]', parameters=None, extra="") -> Path:
    """A small, fast spec (runs take a few hundredths of a second; open and Chinese models have appeared by
    mid-2024, so the shares vary)."""
    parameters = parameters or ('price_sensitivity = { low = 0.1, high = 2.0 }\n'
                                'trust_cn_north_america = { low = 0.0, high = 4.0 }')
    text = TINY.format(name=name, scenario=(SCENARIO_DIR / "baseline.toml").as_posix(), design=design,
                       samples=f"samples = {samples}" if samples is not None else "", replicates=replicates,
                       months=months, agents=agents, end=end, parameters=parameters)
    path = folder / f"{name}.toml"
    path.write_text(text + extra)
    return path


# --- calibration configs ------------------------------------------------------------------------------------------
# The budget of every stage but the fit (out of sample, recovery, hindcast): one generation of ten particles.
TINY_BUDGET = """\
population = 10
generations = 1
min_epsilon = 0.0
max_simulations = 100
min_acceptance_rate = 0.01"""

_SMALL = """
[run]
n_agents = 1000
end = "2026-01"
seeds = 1
seed_base = 1000
seed = 7

[fit]
population = {population}
generations = {generations}
min_epsilon = 0.0
max_simulations = 10000
min_acceptance_rate = 0.01

[predictive]
draws = 10
seed_base = 5000000

[out_of_sample]
cutoff = "2025-06"
{budget}
draws = 10

[baseline]
samples = 1000
keep = 20
L = [0.02, 1.0]
k = [0.03, 1.0]
t0 = ["2023-01", "2028-12"]

[recovery]
{budget}
seeds = 1
data_seed = 777
n_agents = 4000
replicates = 1

[hindcast]
cutoffs = ["2025-06"]
{budget}
draws = 10

[ablation]
population = 5
generations = 1
min_epsilon = 0.0
max_simulations = 5
min_acceptance_rate = 0.01
draws = 5

[priors.downloads_scale]
low = 1e6
high = 1e10
scale = "log"
[priors.sizes_exponent]
low = 0.0
high = 1.5
[priors.openness_weight]
low = 0.0
high = 4.0
"""

SMALL = _SMALL.replace("{budget}", TINY_BUDGET)


def small_config(tmp_path, population=30, generations=3):
    """SMALL with the fit's budget filled in, written to tmp_path/config.toml."""
    path = tmp_path / "config.toml"
    path.write_text(SMALL.format(population=population, generations=generations))
    return path


def small_calibration(folder: Path) -> Path:
    """calibration/config.toml with an even smaller --quick budget (the stages and their checkpoints stay)."""
    text = CONFIG.read_text()
    head, _, _ = text.partition("[quick]")
    quick = {"n_agents": 200, "seeds": 1, "population": 6, "generations": 2, "max_simulations": 30, "draws": 10,
             "oos_population": 5, "oos_generations": 2, "oos_max_simulations": 20, "oos_draws": 10,
             "baseline_samples": 200, "baseline_keep": 20, "recovery_population": 5, "recovery_generations": 2,
             "recovery_max_simulations": 12, "recovery_n_agents": 200, "recovery_replicates": 1,
             "hm_waves": 1, "hm_runs": 16, "hm_noise_points": 3, "hm_candidates": 1000, "hindcast_population": 5,
             "hindcast_generations": 1, "hindcast_max_simulations": 10, "hindcast_draws": 10,
             "ablation_population": 5, "ablation_generations": 1, "ablation_max_simulations": 5,
             "ablation_draws": 5}
    path = folder / "config.toml"
    path.write_text(head + "[quick]\n" + "".join(f"{k} = {v}\n" for k, v in quick.items()))
    return path


# --- comparing result folders -------------------------------------------------------------------------------------
def same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


TIMED_TABLES = ("data/fit_history.csv",)  # their seconds_* columns record timings


def calibration_files(folder: Path) -> list[str]:
    """The calibration's result tables (not summary.json, the report or the timed tables, which record timings)."""
    names = ["posterior.csv", "best.toml"] + [f"data/{p.name}" for p in sorted((folder / "data").glob("*.csv"))]
    assert len(names) > 5
    return [name for name in names if name not in TIMED_TABLES]


def same_untimed_tables(a: Path, b: Path) -> None:
    """The timed tables equal apart from their timing columns."""
    import pandas as pd

    for name in TIMED_TABLES:
        if (b / name).is_file():
            x, y = pd.read_csv(a / name), pd.read_csv(b / name)
            untimed = [c for c in y.columns if not c.startswith("seconds")]
            pd.testing.assert_frame_equal(x[untimed], y[untimed])


# --- an instrumented catalogue ------------------------------------------------------------------------------------
class RecordingRow(dict):
    """A catalogue row that remembers which of its fields were read."""

    def __init__(self, row, log):
        super().__init__(row)
        self.log = log

    def __getitem__(self, key):
        self.log.append((dict.__getitem__(self, "release_date")[:7], key))
        return super().__getitem__(key)


def clear_caches():
    for fn in (catalogue.releases, catalogue.frontier_trend, catalogue.release_rate_per_year):
        fn.cache_clear()


@pytest.fixture
def read_log(monkeypatch):
    """Every (row's release month, field) read from the catalogue while the test runs."""
    log = []
    rows = catalogue._rows
    monkeypatch.setattr(catalogue, "_rows", lambda: [RecordingRow(r, log) for r in rows()])
    clear_caches()
    yield log
    clear_caches()
