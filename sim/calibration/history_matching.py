"""History matching with emulators: rule out the parameter space where the model cannot reproduce the figures
before ABC spends simulations there.

Method (Craig et al. 1997; Vernon, Goldstein & Bower 2010, Bayesian Analysis 5:619; Andrianakis et al. 2015,
PLoS Comput Biol 11:e1003968). In waves: simulate a space-filling design inside the space not ruled out yet (NROY),
each parameter set on a fresh model seed; fit one emulator per target statistic; rule out every point whose
second-largest implausibility exceeds 3 (Pukelsheim's three-sigma rule, robust to one badly emulated figure).
The implausibility of target i at a point u of the unit cube is

    I_i(u) = dist(E[g_i(u)], R_i) / sqrt(Var_em,i(u) + Var_disc + Var_obs + Var_noise,i)

in tolerance units: g_i is the target's statistic as a signed position (`position`), R_i the observed region in
the same units (a value, a one-sided condition or a window), Var_obs = 1 (the tolerance read as one standard
deviation of the observation), Var_disc = `discrepancy`^2 (model discrepancy, an ASSUMPTION set in config.toml),
and Var_noise,i the model's own seed-to-seed variance, estimated each wave from design points rerun on extra
seeds. What is left after the last wave seeds ABC-SMC (sim/calibration/abc_smc.py, run_abc) with a sample drawn inside it.

Every wave is cached (atomic writes) and the emulators are refitted deterministically from the cache, so an
interrupted run resumes to the same result; every simulation's seed comes from (seed, stream, wave, index), so
the result does not depend on the number of workers. The first wave (a prior design whose runs do not depend on
the figures) is run once on stream 0 and its runs shared by every fit with the same run settings
(`shared_first_wave`); each fit measures them on its own figures and fits its own emulators.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.calibration.emulators import EMULATORS, Emulator  # noqa: F401 (EMULATORS: read by the config)
from sim.core.calendar import parse_month
from sim.inputs.targets import LOG_FLOOR, Target

POSITION_CAP = 10.0  # tolerance units beyond the observed region: an emulator need not learn how far a far miss is
NAN_POSITION = POSITION_CAP  # a statistic with nothing to measure (NaN) counts as a far miss
HM_STREAM = 7  # seed sequence (seed, HM_STREAM, stream, wave) of history matching's designs and model seeds
MODEL_SEED_LOW = 10**7  # fresh model seeds are drawn from [MODEL_SEED_LOW, 2**31): above every fixed seed in use
WALK_STEPS = 20  # random-walk steps per chain when the design is drawn inside a small NROY space
SCREEN_BLOCK = 12_500  # candidate points per screening job (each job ships the waves' emulators: ~20 MB per wave)


# --- targets in tolerance units --------------------------------------------------------------------------------
def position(t: Target, statistic: float) -> float:
    """The statistic as a signed position in tolerance units, such that `t.discrepancy(statistic)` is its
    distance outside `observed_region(t)`. Clipped to POSITION_CAP beyond the region's finite ends (NaN: a far
    miss), so that emulators fit the range that decides implausibility, not heavy tails."""
    lo, hi = observed_region(t)
    if not np.isfinite(statistic):
        return hi + NAN_POSITION if np.isfinite(hi) else lo - NAN_POSITION  # a far miss, as in t.discrepancy
    if t.statistic == "crossover":
        g = statistic / t.tolerance
    elif t.scale == "log":
        g = math.log(max(statistic, LOG_FLOOR * t.value) / t.value) / math.log1p(t.tolerance / t.value)
    else:
        g = (statistic - t.value) / t.tolerance
    low = lo if np.isfinite(lo) else hi  # a one-sided condition is clipped on its satisfied side too
    high = hi if np.isfinite(hi) else lo
    return float(min(max(g, low - POSITION_CAP), high + POSITION_CAP))


def observed_region(t: Target) -> tuple[float, float]:
    """The figure in `position` units: a point (0, 0), a half-line for a one-sided condition, a window of months."""
    if t.statistic == "crossover":
        return parse_month(t.start) / t.tolerance, parse_month(t.end) / t.tolerance
    if t.condition == "above":
        return 0.0, math.inf
    if t.condition == "below":
        return -math.inf, 0.0
    return 0.0, 0.0


def region_distance(g: np.ndarray, region: tuple[float, float]) -> np.ndarray:
    lo, hi = region
    return np.maximum(0.0, np.maximum(lo - g, g - hi))


# --- settings and waves ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistorySettings:
    waves: int  # 0: no history matching, ABC starts from the prior
    runs: int  # parameter sets simulated per wave
    noise_points: int  # of which rerun on `noise_seeds` seeds in all, to estimate the seed-to-seed variance
    noise_seeds: int
    candidates: int  # uniform points screened per wave to estimate the NROY fraction (and to draw the design)
    cutoff: float  # implausibility threshold
    order: int  # rule out when the order-th largest implausibility exceeds the cutoff (2: second-largest)
    discrepancy: float  # model-discrepancy standard deviation, tolerance units (ASSUMPTION)
    emulator: str  # "gp" or "gbm"


@dataclass
class Wave:
    emulators: list[Emulator]
    noise_var: np.ndarray  # per target
    regions: list[tuple[float, float]]
    settings: HistorySettings

    def target_implausibility(self, i: int, u: np.ndarray) -> np.ndarray:
        """Implausibility of target i at each point (observation variance 1: the tolerance is one sd)."""
        mean, var = self.emulators[i].predict(u)
        total = var + self.settings.discrepancy ** 2 + 1.0 + self.noise_var[i]
        return region_distance(mean, self.regions[i]) / np.sqrt(total)

    def implausibility(self, u: np.ndarray) -> np.ndarray:
        """(points, targets) implausibilities."""
        return np.column_stack([self.target_implausibility(i, u) for i in range(len(self.emulators))])

    def keeps(self, u: np.ndarray) -> np.ndarray:
        """Whether each point is not ruled out (its order-th largest implausibility is within the cutoff). Target
        by target, dropping a point once `order` targets exceed the cutoff: the same answer as `score`, with far
        fewer emulator evaluations when most of the space is ruled out."""
        k = min(self.settings.order, len(self.emulators))
        misses = np.zeros(len(u), int)
        for i in range(len(self.emulators)):
            alive = np.flatnonzero(misses < k)
            if not alive.size:
                break
            misses[alive] += self.target_implausibility(i, u[alive]) > self.settings.cutoff
        return misses < k

    def score(self, u: np.ndarray) -> np.ndarray:
        """The order-th largest implausibility of each point (what is compared with the cutoff)."""
        imp = self.implausibility(u)
        k = min(self.settings.order, imp.shape[1])
        return np.sort(imp, axis=1)[:, -k]


def not_ruled_out(waves: list[Wave], u: np.ndarray, executor=None) -> np.ndarray:
    """Whether each point survives every wave so far (each wave's emulators judge only what earlier ones kept).
    With an `executor`, in blocks of SCREEN_BLOCK points run by its workers, so they need not idle while ~50,000
    candidates go through ~40 emulators per wave (tens of seconds in one process). The blocks do not depend on
    the number of workers, so neither does the answer."""
    if executor is not None and len(u) > SCREEN_BLOCK:
        blocks = [(waves, u[i:i + SCREEN_BLOCK]) for i in range(0, len(u), SCREEN_BLOCK)]
        return np.concatenate(list(executor.imap(_not_ruled_out, blocks)))
    keep = np.ones(len(u), bool)
    for wave in waves:
        idx = np.flatnonzero(keep)
        if idx.size:
            keep[idx] = wave.keeps(u[idx])
    return keep


def _not_ruled_out(job) -> np.ndarray:
    """Worker: not_ruled_out on one block of points."""
    waves, u = job
    return not_ruled_out(waves, u)


@dataclass
class HistoryResult:
    initial_u: np.ndarray  # ABC's starting sample, inside the final NROY space
    initial_stats: np.ndarray  # (points, seeds, targets)
    waves: pd.DataFrame  # wave, runs, nroy_fraction (of the space its design came from), training_runs, noise_sd
    simulations: int  # parameter sets simulated (noise reruns counted once per set)
    fitted: list[Wave]  # each wave's emulators, for judging other points (empty when read back from the cache)


def _fit_emulator(job) -> Emulator:
    """Worker: one target's emulator. Fitted in the executor's workers, one target each, so the workers do not
    idle while the parent fits ~40 emulators between waves (the fit is deterministic given its seed, whatever
    the worker)."""
    kind, seed, x, y, noise_var = job
    return Emulator(kind, seed=seed).fit(x, y, noise_var)


def _simulate(job):
    """Worker: statistics (seeds, targets) of one parameter set on the given model seeds."""
    simulator, u, seeds = job
    return simulator(u, seeds)


def _simulate_runs(job) -> tuple[list[str], np.ndarray]:
    """Worker: every observable of one parameter set's runs on the given model seeds: the months and an array
    (seeds, months, observables), observables in the order of sim.core.observe.metric_names: what any set of
    figures can be measured on."""
    from sim.calibration.simulator import run_once
    from sim.core.observe import metric_names

    simulator, u, seeds = job
    params = simulator.params(u)
    frames = [run_once(params, simulator.run, seed, metric_names()) for seed in seeds]
    return [str(m) for m in frames[0].index], np.stack([frame.to_numpy(float) for frame in frames])


def _statistics(job) -> np.ndarray:
    """Worker: statistics (seeds, targets) of one parameter set's stored runs, for the simulator's own figures."""
    simulator, u, runs, months, columns = job
    return simulator.statistics(u, [pd.DataFrame(run, index=months, columns=columns) for run in runs])


def fresh_seeds(rng: np.random.Generator, count: int) -> list[int]:
    """`count` model seeds never used by the fixed-seed stages (calibration, predictive and recovery seeds)."""
    return [int(s) for s in rng.integers(MODEL_SEED_LOW, 2**31, size=count)]


def draw_inside(waves: list[Wave], count: int, d: int, candidates: int, rng: np.random.Generator,
                known: np.ndarray, executor=None) -> tuple[np.ndarray, float]:
    """`count` points spread over the NROY space, and the NROY fraction of the prior (from `candidates`
    uniform draws). Uniform draws that survive come first; if too few survive, random-walk chains started from
    survivors and from `known` NROY points (reflected at the cube's faces, a move accepted only inside NROY: a
    Metropolis walk whose target is uniform on NROY) supply the rest. With no surviving point at all, the
    least implausible candidates are used (the report then says NROY is empty)."""
    from sim.calibration.simulator import reflect

    uniform = rng.random((candidates, d))
    inside = not_ruled_out(waves, uniform, executor)
    fraction = float(inside.mean())
    pool = uniform[inside]
    if len(pool) >= count:
        return pool[:count], fraction
    starts = np.vstack([pool, known[not_ruled_out(waves, known)]]) if len(known) else pool
    if len(starts) == 0:
        scores = np.max([w.score(uniform) - w.settings.cutoff for w in waves], axis=0)
        return uniform[np.argsort(scores, kind="stable")[:count]], fraction
    need = count - len(pool)
    cov = np.cov(starts, rowvar=False) if len(starts) > d else np.eye(d) * 0.01
    chol = np.linalg.cholesky((2.38 ** 2 / d) * cov + 1e-8 * np.eye(d))
    chains = starts[rng.integers(len(starts), size=need)]
    for _ in range(WALK_STEPS):
        proposal = reflect(chains + rng.standard_normal(chains.shape) @ chol.T)
        ok = not_ruled_out(waves, proposal)
        chains[ok] = proposal[ok]
    return np.vstack([pool, chains]), fraction


def history_match(label: str, simulator, settings: HistorySettings, population: int, seed: int, stream: int,
                  cache: Path, executor, progress: bool = True,
                  on_wave: Callable[[int], None] | None = None, shared: Path | None = None) -> HistoryResult:
    """Run the waves (cached under cache/<label>/wave-NNN.npz), then draw and simulate `population` points inside
    what is left: ABC's generation 0. `simulator` is sim.calibration.simulator.Simulator (statistics per seed and
    target).

    With `shared` (a folder), the first wave's runs are made once for every fit with the same simulator settings
    and seed (`shared_first_wave`), whatever its figures and `stream`: its design is drawn from the prior and its
    runs do not depend on the figures, only the statistics, positions and emulators fitted on them do."""
    folder = cache / label
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    if done.is_file():  # finished: ABC needs only its starting sample, so the emulators are not refitted
        stored = dict(np.load(folder / "initial.npz"))
        records = json.loads(done.read_text())["waves"]
        return HistoryResult(stored["u"], stored["stats"][:, :len(simulator.run.seeds)], pd.DataFrame(records),
                             sum(r["runs"] for r in records), [])
    d = len(simulator.priors)
    regions = [observed_region(t) for t in simulator.targets]
    waves: list[Wave] = []
    records = []
    all_u = np.empty((0, d))
    rows_u, rows_g = np.empty((0, d)), np.empty((0, len(simulator.targets)))  # every run so far, in position units
    simulations = 0
    for w in range(settings.waves + 1):  # the extra "wave" is ABC's generation 0
        final = w == settings.waves
        path = folder / ("initial.npz" if final else f"wave-{w:03d}.npz")
        size = population if final else settings.runs
        if path.is_file():
            stored = dict(np.load(path))
            u, stats, counts = stored["u"], stored["stats"], stored["counts"]
            fraction, seconds = float(stored["fraction"]), float(stored["seconds"])
        else:
            u, stats, counts, fraction, seconds = _store(path, shared_first_wave(
                shared, label, simulator, settings, seed, executor, progress) if w == 0 and shared is not None
                else _simulate_design(label, simulator, settings, waves, all_u, size, final,
                                      (seed, HM_STREAM, stream, w), executor, progress))
        simulations += size
        if final:
            records.append({"wave": "ABC start", "runs": size, "nroy_fraction": fraction})
            result = HistoryResult(u, stats[:, :len(simulator.run.seeds)], pd.DataFrame(records), simulations, waves)
            tmp = folder / "done.tmp"
            tmp.write_text(json.dumps({"waves": records}, default=float))
            os.replace(tmp, done)
            return result
        start = _now()
        wave, rows_u, rows_g, trained = _fit_wave(simulator, settings, waves, regions, u, stats, counts, rows_u,
                                                  rows_g, (seed, HM_STREAM, stream, w, 2), executor)
        all_u = np.vstack([all_u, u])
        waves.append(wave)
        records.append({"wave": w + 1, "runs": size, "nroy_fraction": fraction,
                        "training_runs": trained, "noise_sd": float(np.sqrt(wave.noise_var).mean()),
                        "seconds_simulating": round(seconds, 1), "seconds_emulating": round(_now() - start, 1)})
        if on_wave is not None:
            on_wave(w)
    raise AssertionError("unreachable")


def _store(path: Path, runs: tuple) -> tuple:
    """Write a wave's (u, stats, counts, fraction, seconds) atomically to `path`; return them."""
    u, stats, counts, fraction, seconds = runs
    tmp = path.parent / "partial.npz"
    np.savez(tmp, u=u, stats=stats, counts=counts, fraction=fraction, seconds=seconds)
    os.replace(tmp, path)
    return runs


def _simulate_design(label: str, simulator, settings: HistorySettings, waves: list[Wave], all_u: np.ndarray,
                     size: int, final: bool, key: tuple[int, ...], executor, progress: bool):
    """One wave's design (a Latin hypercube in wave 0, else points inside what earlier waves kept), each point
    simulated on fresh seeds, the first `noise_points` of a wave on `noise_seeds` seeds to measure the noise.
    Returns the points, their statistics (points, seeds, targets; NaN past a point's seeds), the seed counts, the
    NROY fraction the design came from and the seconds it took. `key` seeds everything: (seed, stream, wave)."""
    start = _now()
    u, fraction, counts, jobs = _design(simulator, settings, waves, all_u, size, final, key, executor)
    bar = _bar(label, settings, final, key, fraction if waves else None, size, progress)
    results = executor.gather(_simulate, jobs, bar)
    bar.close()
    return u, _padded(results, counts, len(simulator.targets)), counts, fraction, _now() - start


def _design(simulator, settings: HistorySettings, waves: list[Wave], all_u: np.ndarray, size: int, final: bool,
            key: tuple[int, ...], executor=None):
    """A wave's points, the NROY fraction they came from, each point's number of seeds and its simulation job
    (simulator, point, fresh model seeds), all seeded by `key`."""
    from scipy.stats import qmc

    d = len(simulator.priors)
    rng = np.random.default_rng(np.random.SeedSequence(list(key)).generate_state(1)[0])
    if not waves:
        u = qmc.LatinHypercube(d=d, seed=rng).random(size)
        fraction = 1.0
    else:
        u, fraction = draw_inside(waves, size, d, settings.candidates, rng, all_u, executor)
    base = len(simulator.run.seeds)
    extra = 0 if final else settings.noise_seeds - base
    counts = np.array([base + (extra if i < settings.noise_points and extra > 0 else 0) for i in range(size)])
    job_seeds = np.random.SeedSequence([*key, 1]).generate_state(size)
    jobs = [(simulator, u[i], fresh_seeds(np.random.default_rng(int(job_seeds[i])), counts[i]))
            for i in range(size)]
    return u, fraction, counts, jobs


def _bar(label: str, settings: HistorySettings, final: bool, key: tuple[int, ...], fraction: float | None,
         size: int, progress: bool, what: str = "") -> tqdm:
    return tqdm(total=size, desc=f"{label} " + ("ABC start" if final else f"wave {key[-1] + 1}/{settings.waves}")
                + what + ("" if fraction is None else f" (NROY {fraction:.3g} of prior)"), unit="set",
                disable=not progress, dynamic_ncols=True)


def _padded(results: list[np.ndarray], counts: np.ndarray, targets: int) -> np.ndarray:
    """Per-point statistics (seeds, targets) as one array (points, most seeds, targets), NaN past a point's seeds."""
    stats = np.full((len(results), int(counts.max()), targets), np.nan)
    for i, r in enumerate(results):
        stats[i, :len(r)] = r
    return stats


def shared_first_wave(shared: Path, label: str, simulator, settings: HistorySettings, seed: int, executor,
                      progress: bool):
    """The first wave for `simulator`'s figures, from runs shared by every fit with the same simulator settings,
    priors, design size and seed: made (on stream 0, so the main fit's first wave is the one it always had) and
    stored under `shared` by the first fit that needs them, read back by the others; then measured on this
    simulator's figures. Returns what _simulate_design returns.

    Every observable of every run is stored (about 15 MB for 590 runs of 37 months), so fits on any figures (the
    main fit, the out-of-sample fit, each recovery replicate's synthetic figures) can use them; the statistics
    are computed as Simulator computes them after a run (observation scales solved for these figures), so a fit
    gets exactly the statistics it would have got from its own runs of the same points and seeds."""
    from sim.core.observe import metric_names

    start = _now()
    key = (seed, HM_STREAM, 0, 0)
    design = json.dumps({"priors": [p.__dict__ for p in simulator.priors], "run": simulator.run.__dict__,
                         "runs": settings.runs, "noise_points": settings.noise_points,
                         "noise_seeds": settings.noise_seeds, "key": key}, sort_keys=True, default=list)
    path = shared / f"wave-000-{hashlib.sha256(design.encode()).hexdigest()[:12]}.npz"
    if path.is_file():
        stored = np.load(path)
        u, counts, runs = stored["u"], stored["counts"], stored["runs"]
        months, columns = stored["months"].tolist(), stored["columns"].tolist()
    else:
        u, _, counts, jobs = _design(simulator, settings, [], np.empty((0, len(simulator.priors))), settings.runs,
                                     False, key)
        bar = _bar(label, settings, False, key, None, len(jobs), progress, " (runs shared by every fit)")
        results = executor.gather(_simulate_runs, jobs, bar)
        bar.close()
        months, columns = results[0][0], metric_names()
        runs = np.concatenate([r[1] for r in results])
        shared.mkdir(parents=True, exist_ok=True)
        tmp = shared / f"{path.stem}.partial.npz"
        np.savez(tmp, u=u, counts=counts, runs=runs, months=np.array(months), columns=np.array(columns))
        os.replace(tmp, path)
    ends = np.cumsum(counts)
    jobs = [(simulator, u[i], runs[end - n:end], months, columns) for i, (n, end) in enumerate(zip(counts, ends))]
    stats = _padded(executor.gather(_statistics, jobs), counts, len(simulator.targets))
    return u, stats, counts, 1.0, _now() - start


def _fit_wave(simulator, settings: HistorySettings, waves: list[Wave], regions: list[tuple[float, float]],
              u: np.ndarray, stats: np.ndarray, counts: np.ndarray, rows_u: np.ndarray, rows_g: np.ndarray,
              key: tuple[int, ...], executor) -> tuple[Wave, np.ndarray, np.ndarray, int]:
    """A wave's emulators, one per target, trained on every run so far that the earlier waves keep (with this
    wave's seed-noise estimate). Returns the wave, the runs so far (points, positions) and how many trained."""
    targets = simulator.targets
    g = np.array([[[position(t, s) for t, s in zip(targets, row)] for row in point] for point in stats])
    measured = np.arange(stats.shape[1])[None, :] < counts[:, None]
    noise_var = _noise_variance(g, measured)
    point_rows = np.repeat(np.arange(len(u)), measured.sum(axis=1))
    rows_u = np.vstack([rows_u, u[point_rows]])
    rows_g = np.vstack([rows_g, g[measured]])
    train = not_ruled_out(waves, rows_u)
    emulator_seeds = np.random.SeedSequence(list(key)).generate_state(len(targets))
    x_train = rows_u[train]
    emulators = list(executor.imap(_fit_emulator, [
        (settings.emulator, int(emulator_seeds[i]), x_train, rows_g[train, i], float(noise_var[i]))
        for i in range(len(targets))]))
    return Wave(emulators, noise_var, regions, settings), rows_u, rows_g, int(train.sum())


def _noise_variance(g: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Pooled within-point variance of each target's position over the points run on several seeds."""
    multi = measured.sum(axis=1) >= 2
    if not multi.any():
        raise ValueError("history matching needs design points run on at least two seeds (noise_points, "
                         "noise_seeds) to estimate the model's seed-to-seed variance")
    num = np.zeros(g.shape[2])
    dof = 0
    for i in np.flatnonzero(multi):
        rows = g[i][measured[i]]
        num += ((rows - rows.mean(axis=0)) ** 2).sum(axis=0)
        dof += len(rows) - 1
    return num / dof


def _now() -> float:
    import time

    return time.perf_counter()
