"""The calibration settings (calibration/config.toml), read and checked before any simulation.

Every value is checked with the shared input checks (sim/core/checks.py): a bad one raises InputError naming the file,
the key (`section.key`, or `quick.key` for a --quick override) and what is allowed. calibration/README.md explains
the method the settings drive (sim/calibration/calibrate.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from sim.core import checks as check
from sim.core.calendar import month_label, parse_month
from sim.calibration.history_matching import EMULATORS, MODEL_SEED_LOW, HistorySettings
from sim.core.parameters import PARAMETERS, check_value
from sim.inputs.targets import Target

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_DIR = ROOT / "calibration"
CONFIG_TOML = CALIBRATION_DIR / "config.toml"
NOISE_FLOOR_SEEDS = 8  # data seeds over which the recovery's noise floor is measured
RECOVERY_DATA_SEED_STRIDE = 100  # replicate r's data come from data_seed + 100 r, its noise floor from the next 8


# --- configuration -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prior:
    """Uniform prior over [low, high] (in log10 when `log`). The fit works on the unit interval: u = 0 is `low`,
    u = 1 is `high`."""

    name: str
    low: float
    high: float
    log: bool = False
    why: str = ""

    @property
    def bounds(self) -> tuple[float, float]:
        """Bounds on the reporting scale (log10 of the value when `log`)."""
        return (math.log10(self.low), math.log10(self.high)) if self.log else (self.low, self.high)

    def on_scale(self, value: float) -> float:
        """The value on the reporting scale (log10 when `log`), where the prior is uniform."""
        return math.log10(value) if self.log else float(value)

    def to_unit(self, value: float) -> float:
        """The point of the unit interval where `value` lies (from_unit's inverse)."""
        lo, hi = self.bounds
        return min(max((self.on_scale(value) - lo) / (hi - lo), 0.0), 1.0)

    def values_from_unit(self, u: np.ndarray) -> np.ndarray:
        """`from_unit` over an array, without the parameter-kind check: for priors over curve coefficients (the
        baselines' L, k, t0, ...), which are not model parameters."""
        if self.log:
            return np.exp(math.log(self.low) + (math.log(self.high) - math.log(self.low)) * u)
        return self.low + (self.high - self.low) * u

    def from_unit(self, u: float) -> Any:
        lo, hi = self.bounds
        x = lo + (hi - lo) * float(u)
        value = min(max(10.0 ** x if self.log else x, self.low), self.high)
        return check_value(self.name, PARAMETERS[self.name].kind(value))


def parameter_set(priors: tuple[Prior, ...], u: Iterable[float]) -> dict[str, Any]:
    """The parameter set at a point of the unit cube (one coordinate per prior)."""
    return {p.name: p.from_unit(x) for p, x in zip(priors, u)}


def prior_draws(priors: tuple[Prior, ...], count: int, seed) -> list[dict[str, Any]]:
    """`count` parameter sets drawn from the priors (known sets for parameter recovery)."""
    return [parameter_set(priors, row) for row in np.random.default_rng(seed).random((count, len(priors)))]


@dataclass(frozen=True)
class Budget:
    population: int
    generations: int
    min_epsilon: float
    max_simulations: int  # parameter sets tried, over all generations
    min_acceptance_rate: float


@dataclass(frozen=True)
class RunSettings:
    n_agents: int
    end: str
    seeds: tuple[int, ...]  # fixed seeds (common random numbers); with `fresh`, only their number counts
    fixed: tuple[tuple[str, Any], ...] = ()  # model parameters every run takes (a hindcast's catalogue cutoff)
    fresh: bool = False  # every simulated parameter set runs len(seeds) fresh seeds drawn from its job's seed


@dataclass(frozen=True)
class Config:
    path: str
    quick: bool
    run: RunSettings
    seed: int
    fit: Budget
    draws: int
    predictive_seed_base: int
    cutoff: str
    oos: Budget
    oos_draws: int
    baseline_samples: int
    baseline_keep: int
    baseline_bounds: dict[str, tuple[float, float]]
    recovery: Budget
    recovery_seeds: tuple[int, ...]
    recovery_data_seed: int
    recovery_n_agents: int
    recovery_replicates: int
    hindcast_cutoffs: tuple[str, ...]
    hindcast: Budget
    hindcast_draws: int
    priors: tuple[Prior, ...] = field(default=())
    twin: Budget | None = None  # the aggregate logit twin's fits in the hindcasts (None: the hindcast budget)
    ablation: Budget | None = None  # None: no [ablation] section, no ablation stage
    ablation_draws: int = 0
    history: HistorySettings = HistorySettings(0, 0, 0, 0, 0, 3.0, 2, 0.0, "gp")  # no history matching
    recovery_history_waves: int = 0  # history-matching waves of each recovery fit (at most history.waves)

    def describe(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("priors", "path")}
        out["priors"] = [p.__dict__ for p in self.priors]
        return json.loads(json.dumps(out, default=lambda o: o.__dict__))


_SECTIONS = {
    "run": {"n_agents", "end", "seeds", "seed_base", "seed", "fresh_seeds"},
    "fit": {"population", "generations", "min_epsilon", "max_simulations", "min_acceptance_rate"},
    "predictive": {"draws", "seed_base"},
    "out_of_sample": {"cutoff", "population", "generations", "min_epsilon", "max_simulations",
                      "min_acceptance_rate", "draws"},
    "baseline": {"samples", "keep", "L", "k", "t0"},
    "recovery": {"population", "generations", "min_epsilon", "max_simulations", "min_acceptance_rate", "seeds",
                 "data_seed", "n_agents", "replicates", "history_waves"},
    "hindcast": {"cutoffs", "population", "generations", "min_epsilon", "max_simulations", "min_acceptance_rate",
                 "draws", "twin_population", "twin_max_simulations"},
    "ablation": {"population", "generations", "min_epsilon", "max_simulations", "min_acceptance_rate", "draws"},
    "history_matching": {"waves", "runs", "noise_points", "noise_seeds", "candidates", "cutoff", "order",
                         "discrepancy", "emulator"},
    "priors": None,
    "quick": {"n_agents", "seeds", "population", "generations", "max_simulations", "draws", "oos_population",
              "hm_waves", "hm_runs", "hm_noise_points", "hm_candidates", "oos_generations", "oos_max_simulations", "oos_draws", "baseline_samples", "baseline_keep",
              "recovery_population", "recovery_generations", "recovery_max_simulations", "recovery_n_agents",
              "recovery_replicates", "hindcast_population", "hindcast_generations", "hindcast_max_simulations",
              "hindcast_draws", "ablation_population", "ablation_generations", "ablation_max_simulations",
              "ablation_draws"},
}


REQUIRED_SECTIONS = ("run", "fit", "predictive", "out_of_sample", "baseline", "recovery", "hindcast", "priors")
PRIOR_KEYS = ("low", "high", "scale", "why")


class _Settings:
    """Reads `section.key` from the config, or its --quick override `quick.<override>`, and checks it."""

    def __init__(self, path: Path, data: dict, quick: dict):
        self.path, self.data, self.quick = path, data, quick

    def _get(self, section: str, key: str, override: str | None) -> tuple[str, Any]:
        if override and override in self.quick:
            return f"quick.{override}", self.quick[override]
        if key not in self.data[section]:
            check.fail(self.path, f"{section}.{key}", "missing")
        return f"{section}.{key}", self.data[section][key]

    def whole(self, section, key, low=None, high=None, override=None) -> int:
        return check.whole(self.path, *self._get(section, key, override), low, high)

    def number(self, section, key, low=None, high=None) -> float:
        return check.number(self.path, *self._get(section, key, None), low, high)

    def history(self) -> HistorySettings:
        """The [history_matching] section (sim/calibration/history_matching.py); absent: no history matching."""
        section = "history_matching"
        if section not in self.data:
            return Config.history
        settings = HistorySettings(
            waves=self.whole(section, "waves", 0, 20, "hm_waves"),
            runs=self.whole(section, "runs", 10, 10**6, "hm_runs"),
            noise_points=self.whole(section, "noise_points", 0, 10**6, "hm_noise_points"),
            noise_seeds=self.whole(section, "noise_seeds", 1, 100),
            candidates=self.whole(section, "candidates", 100, 10**8, "hm_candidates"),
            cutoff=self.number(section, "cutoff", 0.5, 100.0),
            order=self.whole(section, "order", 1, 100),
            discrepancy=self.number(section, "discrepancy", 0.0, 100.0),
            emulator=check.choice(self.path, f"{section}.emulator", self.data[section].get("emulator", "gp"),
                                  EMULATORS),
        )
        if settings.waves and (settings.noise_points < 2 or settings.noise_seeds < 2):
            check.fail(self.path, f"{section}.noise_points", "need at least 2 points on at least 2 seeds "
                       "(noise_seeds) to estimate the model's seed-to-seed variance")
        if settings.noise_points > settings.runs:
            check.fail(self.path, f"{section}.noise_points", f"must be at most runs ({settings.runs})")
        return settings

    def twin(self, hindcast: Budget) -> Budget:
        """The aggregate logit twin's budget in the hindcasts: the hindcast's, with [hindcast] twin_population and
        twin_max_simulations where given (never above the hindcast's, so --quick budgets bind it too)."""
        given = {key: self.whole("hindcast", f"twin_{key}", low, 10**8) for key, low in
                 (("population", 5), ("max_simulations", 1)) if f"twin_{key}" in self.data["hindcast"]}
        return replace(hindcast, **{key: min(value, getattr(hindcast, key)) for key, value in given.items()})

    def month(self, section, key) -> str:
        return month_label(check.month(self.path, *self._get(section, key, None)))

    def agents(self, section, override) -> int:
        where, value = self._get(section, "n_agents", override)
        return check.parameter(self.path, where, "n_agents", value)

    def budget(self, section, prefix="") -> Budget:
        return Budget(
            population=self.whole(section, "population", 5, 100_000, prefix + "population"),
            generations=self.whole(section, "generations", 1, 100, prefix + "generations"),
            min_epsilon=self.number(section, "min_epsilon", 0.0),
            max_simulations=self.whole(section, "max_simulations", 1, 10**8, prefix + "max_simulations"),
            min_acceptance_rate=self.number(section, "min_acceptance_rate", 1e-4, 1.0),
        )


def load_config(path: Path = CONFIG_TOML, quick: bool = False) -> Config:
    """Read and check the calibration settings; raises InputError naming the key for anything wrong."""
    path = Path(path)
    data = _sections(path)
    get = _Settings(path, data, data.get("quick", {}) if quick else {})
    n_seeds, seed_base, recovery_seeds, data_seed, replicates, predictive_base = _seeds(path, get)
    fresh = check.flag(path, "run.fresh_seeds", data["run"].get("fresh_seeds", False))
    history = get.history()
    hindcast = get.budget("hindcast", "hindcast_")
    if history.waves and not fresh:
        check.fail(path, "run.fresh_seeds", "history matching simulates every set on fresh seeds; set "
                   "fresh_seeds = true so ABC continues on fresh seeds too")
    return Config(
        path=str(path), quick=quick,
        run=RunSettings(get.agents("run", "n_agents"), get.month("run", "end"),
                        tuple(seed_base + k for k in range(n_seeds)), fresh=fresh),
        seed=get.whole("run", "seed", 0),
        fit=get.budget("fit"),
        draws=get.whole("predictive", "draws", 10, 100_000, "draws"),
        predictive_seed_base=predictive_base,
        cutoff=get.month("out_of_sample", "cutoff"),
        oos=get.budget("out_of_sample", "oos_"),
        oos_draws=get.whole("out_of_sample", "draws", 10, 100_000, "oos_draws"),
        baseline_samples=get.whole("baseline", "samples", 100, 10**7, "baseline_samples"),
        baseline_keep=get.whole("baseline", "keep", 10, 10**6, "baseline_keep"),
        baseline_bounds=_baseline_bounds(path, data["baseline"]),
        recovery=get.budget("recovery", "recovery_"),
        recovery_seeds=tuple(seed_base + k for k in range(recovery_seeds)),
        recovery_data_seed=data_seed,
        recovery_n_agents=get.agents("recovery", "recovery_n_agents"),
        recovery_replicates=replicates,
        hindcast_cutoffs=_hindcast_cutoffs(path, data["hindcast"], get.month("run", "end")),
        hindcast=hindcast,
        twin=get.twin(hindcast),
        hindcast_draws=get.whole("hindcast", "draws", 10, 100_000, "hindcast_draws"),
        priors=tuple(_prior(path, name, spec) for name, spec in data["priors"].items()) or check.fail(
            path, "priors", "needs at least one parameter"),
        history=history,
        recovery_history_waves=min(history.waves, get.whole("recovery", "history_waves", 0, 20)
                                   if "history_waves" in data["recovery"] else history.waves),
        ablation=get.budget("ablation", "ablation_") if "ablation" in data else None,
        ablation_draws=get.whole("ablation", "draws", 5, 100_000, "ablation_draws") if "ablation" in data else 0,
    )


def _sections(path: Path) -> dict[str, Any]:
    """The file's tables, each a known section with known keys, every required section present."""
    data = check.read_toml(path, "calibration config", f"the sections {', '.join(REQUIRED_SECTIONS)}")
    for section, content in data.items():
        if section not in _SECTIONS:
            check.fail(path, section, f"unknown section; allowed: {', '.join(_SECTIONS)}")
        check.table(path, section, content, sorted(_SECTIONS[section] or content))
    for section in REQUIRED_SECTIONS:
        if section not in data:
            check.fail(path, section, "missing section")
    return data


# Every stage's predictive seeds lie in [predictive.seed_base, + PREDICTIVE_SEED_SPAN): the posterior predictive at
# +0, the out of sample at +100,000, the hindcasts from +200,000, the ablations from +2,000,000, the prior predictive
# at +3,000,000, the best set's candidates at +3,500,000 (tests/test_calibration_targets.py checks the offsets stay
# inside); fresh seeds lie above it all.
PREDICTIVE_SEED_SPAN = 4 * 10**6


def _seeds(path: Path, get: _Settings) -> tuple[int, int, int, int, int, int]:
    """The seed settings (calibration seeds, their base, recovery seeds, recovery data seed, replicates,
    predictive seed base), checked to keep the recovery's data and the predictive runs off the fit's seeds: a
    shared seed would let the fit see the very path it is judged on."""
    n_seeds = get.whole("run", "seeds", 1, 100, "seeds")
    seed_base = get.whole("run", "seed_base", 0)
    recovery_seeds = get.whole("recovery", "seeds", 1, 100)
    data_seed = get.whole("recovery", "data_seed", 0)
    replicates = get.whole("recovery", "replicates", 1, 100, "recovery_replicates")
    data_seeds = [data_seed + RECOVERY_DATA_SEED_STRIDE * r + k for r in range(replicates)
                  for k in range(1 + NOISE_FLOOR_SEEDS)]
    if any(seed_base <= seed < seed_base + max(n_seeds, recovery_seeds) for seed in data_seeds):
        last = seed_base + max(n_seeds, recovery_seeds) - 1
        check.fail(path, "recovery.data_seed", f"the recovery data seeds (data_seed + {RECOVERY_DATA_SEED_STRIDE} r "
                   f"+ 0..{NOISE_FLOOR_SEEDS} for each replicate r) must differ from the calibration seeds "
                   f"({seed_base}..{last})")
    predictive_base = get.whole("predictive", "seed_base", 0, MODEL_SEED_LOW - PREDICTIVE_SEED_SPAN)
    fixed = [*range(seed_base, seed_base + max(n_seeds, recovery_seeds)), *data_seeds]
    if any(predictive_base <= seed < predictive_base + PREDICTIVE_SEED_SPAN for seed in fixed):
        check.fail(path, "predictive.seed_base", f"the predictive seeds (seed_base + 0..{PREDICTIVE_SEED_SPAN - 1:,}, "
                   "every stage's) must not include run.seed_base's or the recovery data seeds")
    return n_seeds, seed_base, recovery_seeds, data_seed, replicates, predictive_base


def _baseline_bounds(path: Path, baseline: dict) -> dict[str, tuple[float, float]]:
    """The logistic baseline's prior bounds: L and k as numbers, t0 as months (k positive: log-uniform)."""
    bounds = {}
    for key in ("L", "k", "t0"):
        where = f"baseline.{key}"
        pair = baseline.get(key)
        if not isinstance(pair, list) or len(pair) != 2:
            check.fail(path, where, f"must be a list [low, high], got {pair!r}")
        if key == "t0":
            pair = [check.month(path, where, x) for x in pair]
        pair = [check.number(path, where, x, 0.0 if key == "k" else None, low_open=key == "k") for x in pair]
        if not pair[0] < pair[1]:
            check.fail(path, where, f"must be two increasing values, got {baseline[key]!r}")
        bounds[key] = (pair[0], pair[1])
    return bounds


def _hindcast_cutoffs(path: Path, hindcast: dict, run_end: str) -> tuple[str, ...]:
    """Increasing months before the runs' end, each a valid `catalogue_cutoff`."""
    where = "hindcast.cutoffs"
    cutoffs = check.texts(path, where, hindcast.get("cutoffs"), what="months YYYY-MM", nonempty=True)
    for cutoff in cutoffs:
        check.parameter(path, where, "catalogue_cutoff", cutoff)
    if sorted(set(cutoffs)) != cutoffs or cutoffs[-1] >= run_end:
        check.fail(path, where, f"must be increasing months before run.end ({run_end}), got {cutoffs!r}")
    return tuple(cutoffs)


def _prior(path: Path, name: str, spec: Any) -> Prior:
    where = f"priors.{name}"
    if name not in PARAMETERS or PARAMETERS[name].kind is not float:
        numeric = [n for n, p in PARAMETERS.items() if p.kind is float]
        check.fail(path, where, f"unknown numeric parameter; allowed: {', '.join(numeric)}")
    check.table(path, where, spec, PRIOR_KEYS)
    p = PARAMETERS[name]
    low = check.number(path, f"{where}.low", spec.get("low", p.low))
    high = check.number(path, f"{where}.high", spec.get("high", p.high))
    if not p.low <= low < high <= p.high:
        check.fail(path, where, f"need {p.low} <= low < high <= {p.high} (the parameter's range), got [{low}, {high}]")
    scale = check.choice(path, f"{where}.scale", spec.get("scale", "linear"), ("linear", "log"))
    if scale == "log" and low <= 0:
        check.fail(path, f"{where}.low", "must be positive on a log scale")
    why = check.text(path, f"{where}.why", spec.get("why", ""))
    return Prior(name, low, high, scale == "log", " ".join(why.split()))


def check_targets(targets: list[Target], config: Config, path: Path | str) -> None:
    """Targets must lie inside the calibration runs (2023-01 .. run.end), and at least one must be fitted."""
    end = parse_month(config.run.end)
    for t in targets:
        if parse_month(t.end) > end:
            check.fail(path, f"target ({t.id}).end", f"{t.end} is after the calibration runs end "
                       f"({config.run.end}, {config.path})")
    if not any(t.fit for t in targets):
        check.fail(path, "target", "no target has fit = true")
    for cutoff in config.hindcast_cutoffs:
        if not any(t.fit and t.end <= cutoff for t in targets) or not any(t.end > cutoff for t in targets):
            check.fail(path, "target", f"hindcast cutoff {cutoff} ({config.path}) needs a fitted target ending by "
                       "it and a target ending after it")
