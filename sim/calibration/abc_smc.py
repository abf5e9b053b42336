"""ABC-SMC with MCMC moves: the calibration's fit (stage `fit`, and every refit: out of sample, recovery,
hindcasts, ablations).

Each generation is one parallel, seeded batch of particle jobs, cached on disk, so a fit resumes after the last
stored generation and gives the same posterior whatever the number of workers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
from tqdm import tqdm

from sim.calibration.calibration_config import Budget, Config, Prior, RunSettings, parameter_set
from sim.calibration.history_matching import history_match
from sim.calibration.simulator import Simulator, reflect
from sim.running.executor import Executor
from sim.running.store import atomic_write
from sim.inputs.targets import Target, nan_mean

INITIAL_EPSILON = 1e9  # recorded as generation 0's epsilon: it accepts every prior draw
KEEP_FRACTION = 0.5  # share of particles kept each generation; epsilon is the largest kept distance
MOVE_FAILURE = 0.1  # moves per replenished particle are chosen so that it stays put with this probability
TARGET_ACCEPTANCE = 0.25  # the proposal scale is adapted each generation toward this acceptance rate of the moves
MAX_SCALE_STEP = 4.0  # the scale changes by at most this factor from one generation to the next
SHARED_FIRST_WAVE = "hm-shared"  # cache folder of history matching's first-wave runs, shared by every fit


class Generation(NamedTuple):
    """One generation's record, as stored (a float array, `record`) beside its particles."""

    generation: int
    epsilon: float
    simulations: int  # parameter sets simulated in this generation
    accepted: int  # its population
    acceptance: float  # acceptance rate of its moves
    scale: float  # proposal covariance of its moves / covariance of the kept particles (0: no moves)


class MoveJob(NamedTuple):
    """What a worker needs to move (or, with moves = 0, first simulate) one particle."""

    simulator: Simulator
    start: np.ndarray
    start_stats: np.ndarray | None  # None: simulate `start` first
    epsilon: float
    chol: np.ndarray | None  # Cholesky factor of the proposal covariance
    moves: int
    seed: int


def _move_particle(job: MoveJob):
    """Worker: `moves` random-walk Metropolis steps from `start` that keep the particle within epsilon.

    The prior is uniform on the unit cube and proposals reflect at its faces (a symmetric kernel), so the
    Metropolis ratio is 1 inside the cube and a proposal is accepted exactly when its distance is <= epsilon.
    With moves = 0 the job simply simulates `start` (generation 0: a prior draw)."""
    simulator, start, start_stats, epsilon, chol, moves, seed = job
    rng = np.random.default_rng(seed)
    u = np.asarray(start, float)
    stats = simulator(u, simulator.seeds_for(rng)) if start_stats is None else start_stats
    distance = simulator.distance(stats)
    accepted = 0
    for _ in range(moves):
        proposal = reflect(u + chol @ rng.standard_normal(len(u)))
        proposal_stats = simulator(proposal, simulator.seeds_for(rng))
        proposal_distance = simulator.distance(proposal_stats)
        if proposal_distance <= epsilon:
            u, stats, distance, accepted = proposal, proposal_stats, proposal_distance, accepted + 1
    return u, stats, distance, accepted, moves if start_stats is not None else 1


@dataclass
class AbcResult:
    particles: pd.DataFrame  # model-scale parameters, weight, distance, stat:<id> (seed mean)
    generations: pd.DataFrame  # generation, epsilon, simulations, accepted, acceptance, moves
    stopped: str
    history: pd.DataFrame | None = None  # history matching's waves, when it ran first


def fit_stage(label: str, targets: list[Target], config: Config, budget: Budget, run: RunSettings, cache: Path,
              executor: Executor, progress: bool = True, on_particle: Callable[[int, int], None] | None = None,
              stream: int | None = None) -> AbcResult:
    """History matching (config.history.waves > 0; sim/calibration/history_matching.py) and then ABC-SMC starting from a
    sample of what it did not rule out, so the ABC budget goes where the data are; plain ABC-SMC from the prior
    otherwise. The first wave's runs (a prior design) are made once per calibration and shared by every fit with
    the same run settings (fit, out of sample, recovery replicates): only their statistics and emulators differ."""
    if not config.history.waves:
        return run_abc(label, targets, config, budget, run, cache, executor, progress, on_particle, stream)
    matched = history_match(f"{label}-hm", Simulator(config.priors, targets, run), config.history,
                            budget.population, config.seed, stream or 0, cache, executor, progress,
                            shared=cache / SHARED_FIRST_WAVE)
    result = run_abc(label, targets, config, budget, run, cache, executor, progress, on_particle, stream,
                     initial=(matched.initial_u, matched.initial_stats))
    result.history = matched.waves
    return result


def run_abc(
    label: str, targets: list[Target], config: Config, budget: Budget, run: RunSettings, cache: Path,
    executor: Executor, progress: bool = True, on_particle: Callable[[int, int], None] | None = None,
    stream: int | None = None, initial: tuple[np.ndarray, np.ndarray] | None = None,
) -> AbcResult:
    """ABC-SMC with MCMC moves (the replenishment algorithm of Drovandi & Pettitt 2011, Biometrics 67:225).

    Generation 0 simulates `population` prior draws. Each later generation drops the worse half of the particles
    (epsilon becomes the largest distance kept), refills it with copies of kept particles and moves each copy by
    random-walk Metropolis steps that stay within epsilon (proposal covariance: that of the kept particles times a
    scale adapted toward TARGET_ACCEPTANCE, see `proposal_scale`). All
    particles keep equal weight, so the posterior does not degenerate the way importance weights do with 20
    parameters and a population of a few hundred (pyabc's ABC-SMC, measured here: an effective sample size of 3
    out of 200). Stops after `generations`, before epsilon would fall below `min_epsilon`, when
    `max_simulations` parameter sets have been simulated, or when the moves' acceptance rate falls below
    `min_acceptance_rate` (the population is then final: further moves would mostly repeat particles).

    Every generation is stored in cache/<label>/; a rerun resumes after the last stored generation, and a
    finished run is reused. Each job's seed comes from (seed, [stream,] generation, index): the result is the
    same whatever the number of workers and whether or not the run was interrupted; fits given different
    `stream`s (the recovery replicates) draw independent random numbers. `initial` (points of the unit cube and
    their statistics, `population` of them, e.g. drawn inside what history matching left; statistics None: they
    are simulated, e.g. another fit's posterior under changed settings) replaces generation 0's prior sample: the
    moves still target the prior restricted to distance <= epsilon, so the sample only decides where the
    population starts."""
    folder = cache / label
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    simulator = Simulator(config.priors, targets, run)
    n = budget.population
    state, history = _stored_generations(folder)
    while not done.is_file():
        t = len(history)
        seeds = np.random.SeedSequence([config.seed, t] if stream is None else [config.seed, stream, t]
                                       ).generate_state(n + 1)
        keep, epsilon = _survivors(state["distance"], n) if t > 0 else (np.arange(0), INITIAL_EPSILON)
        acceptance = history[-1].acceptance if history else 1.0
        scale = proposal_scale(history, len(config.priors))
        stop = _stop_reason(history, epsilon if t > 0 else np.inf, acceptance, budget)
        if stop:
            done.write_text(json.dumps({"stopped": stop}))
            break
        if t == 0:
            jobs = _first_jobs(simulator, initial, n, seeds)
        else:
            moves = _moves_per_particle(t, acceptance, budget, sum(g.simulations for g in history), n - len(keep))
            jobs = _move_jobs(simulator, state, keep, epsilon, scale, moves, n, seeds)
        results = _run_generation(jobs, executor, f"{label} generation {t + 1}/{budget.generations}"
                                  + ("" if t == 0 else f" (eps {epsilon:.3g})"), progress, on_particle, t)
        state = _next_state(state, keep, results, first=t == 0)
        sims = n if t == 0 and initial is not None else int(sum(r[4] for r in results))  # initial: simulated once
        tried = sum(job.moves for job in jobs)
        acceptance = 1.0 if t == 0 else sum(r[3] for r in results) / max(1, tried)
        history.append(Generation(t + 1, epsilon, sims, n, acceptance, 0.0 if t == 0 else scale))
        atomic_write(folder / f"generation-{t:03d}.npz",
                     lambda tmp: np.savez(tmp, record=np.array(history[-1], float), **state))
    return _abc_result(state, history, config.priors, targets, json.loads(done.read_text())["stopped"])


def _stored_generations(folder: Path) -> tuple[dict[str, np.ndarray], list[Generation]]:
    """The last stored generation's particles and every stored generation's record: where a fit resumes."""
    stored = sorted(folder.glob("generation-*.npz"))
    if not stored:
        return {}, []
    return dict(np.load(stored[-1])), [Generation(*np.load(path)["record"].tolist()) for path in stored]


def _survivors(distance: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """The particles kept into the next generation (the closer KEEP_FRACTION, at least two) and the new
    epsilon: the largest kept distance."""
    keep = np.argsort(distance, kind="stable")[: max(2, int(round(n * KEEP_FRACTION)))]
    return keep, float(distance[keep[-1]])


def _first_jobs(simulator: Simulator, initial: tuple[np.ndarray, np.ndarray | None] | None, n: int,
                seeds: np.ndarray) -> list[MoveJob]:
    """Generation 0: simulate `initial` when given (its statistics too, unless known), else `n` prior draws."""
    if initial is not None:
        if len(initial[0]) != n:
            raise ValueError(f"initial sample of {len(initial[0])} points for a population of {n}")
        known = initial[1] if initial[1] is not None else [None] * n  # None: simulate the points first
        return [MoveJob(simulator, u, stats, np.inf, None, 0, int(seeds[i]))
                for i, (u, stats) in enumerate(zip(initial[0], known))]
    starts = np.random.default_rng(seeds[-1]).random((n, len(simulator.priors)))
    return [MoveJob(simulator, starts[i], None, np.inf, None, 0, int(seeds[i])) for i in range(n)]


def _moves_per_particle(t: int, acceptance: float, budget: Budget, simulations: int, refill: int) -> int:
    """Enough Metropolis steps that a copy stays put with probability MOVE_FAILURE at the last acceptance rate
    (0.5 in generation 1, where none is measured yet), at most 50 and within the simulation budget left."""
    rate = 0.5 if t == 1 else min(max(acceptance, 1e-3), 0.9)
    moves = min(50, math.ceil(math.log(MOVE_FAILURE) / math.log(1.0 - rate)))
    return min(moves, max(1, (budget.max_simulations - simulations) // max(1, refill)))


def proposal_scale(history: list[Generation], d: int) -> float:
    """The factor on the kept particles' covariance for the next generation's random walk.

    The first moves use 2.38^2 / d, optimal for a random walk on a d-dimensional Gaussian (Roberts, Gelman & Gilks
    1997; acceptance about 0.23); the former fixed factor 2 is 8 times too wide with 23 parameters, and its moves'
    acceptance fell to 0.06 (calibration/report.md, run of 2026-12-02). Later generations correct the last scale by
    the acceptance its moves had (a Robbins-Monro step on the log scale, at most MAX_SCALE_STEP either way), so the
    scale follows the shape of the set within epsilon, which is not Gaussian. Deterministic: it depends only on
    stored generations, so a resumed fit proposes exactly as an uninterrupted one."""
    moved = [g for g in history if g.scale > 0]
    if not moved:
        return 2.38 ** 2 / d
    last = moved[-1]
    step = (last.acceptance - TARGET_ACCEPTANCE) / (TARGET_ACCEPTANCE * (1.0 - TARGET_ACCEPTANCE))
    return float(last.scale * math.exp(np.clip(step, -math.log(MAX_SCALE_STEP), math.log(MAX_SCALE_STEP))))


def _move_jobs(simulator: Simulator, state: dict[str, np.ndarray], keep: np.ndarray, epsilon: float, scale: float,
               moves: int, n: int, seeds: np.ndarray) -> list[MoveJob]:
    """Copies of kept particles (drawn with the generation's last seed) to refill the population, each to be
    moved with a proposal covariance `scale` times that of the kept particles."""
    d = state["u"].shape[1]
    kept_u = state["u"][keep]
    cov = np.cov(kept_u, rowvar=False) if d > 1 else np.atleast_2d(np.var(kept_u, ddof=1))
    chol = np.linalg.cholesky(scale * cov + 1e-10 * np.eye(d))
    parents = np.random.default_rng(seeds[-1]).choice(keep, size=n - len(keep))
    return [MoveJob(simulator, state["u"][j], state["stats"][j], epsilon, chol, moves, int(seeds[i]))
            for i, j in enumerate(parents)]


def _run_generation(jobs: list[MoveJob], executor: Executor, desc: str, progress: bool,
                    on_particle: Callable[[int, int], None] | None, t: int) -> list:
    """Every particle job of one generation, in order, with a progress bar; `on_particle(t, i)` after each."""
    bar = tqdm(total=len(jobs), desc=desc, unit="particle", disable=not progress, dynamic_ncols=True)
    results = executor.gather(_move_particle, jobs, bar, None if on_particle is None else lambda i: on_particle(t, i))
    bar.close()
    return results


def _next_state(state: dict[str, np.ndarray], keep: np.ndarray, results: list, first: bool) -> dict[str, np.ndarray]:
    """The new population: the moved copies after the kept particles (only the simulated draws in generation 0)."""
    new = {"u": np.array([r[0] for r in results]), "stats": np.array([r[1] for r in results]),
           "distance": np.array([r[2] for r in results])}
    if first:
        return new
    return {key: np.concatenate([state[key][keep], new[key]]) for key in ("u", "stats", "distance")}


def _stop_reason(history: list[Generation], next_epsilon: float, acceptance: float, budget: Budget) -> str:
    """Why the fit stops instead of running the next generation ('' when it goes on)."""
    if not history:
        return ""
    if len(history) >= budget.generations:
        return f"reached {budget.generations} generations"
    if next_epsilon < budget.min_epsilon:
        return (f"the next epsilon ({next_epsilon:.3g}) would fall below min_epsilon {budget.min_epsilon:.3g} "
                "(the noise floor: path noise alone puts runs this far apart)")
    if sum(g.simulations for g in history) >= budget.max_simulations:
        return f"simulation budget ({budget.max_simulations} parameter sets) used"
    if acceptance < budget.min_acceptance_rate:
        return (f"the moves' acceptance rate fell to {acceptance:.3f}, below {budget.min_acceptance_rate} "
                "(the last generation is the posterior)")
    return ""


def _abc_result(state: dict, history: list[Generation], priors: tuple[Prior, ...], targets: list[Target],
                stopped: str) -> AbcResult:
    """The final population as a table on the model's scales, with each target's seed-mean statistic."""
    rows = []
    for u, stats, distance in zip(state["u"], state["stats"], state["distance"]):
        row = parameter_set(priors, u)
        row["weight"] = 1.0 / len(state["u"])
        row["distance"] = float(distance)
        for t, column in zip(targets, stats.T):
            row[f"stat:{t.id}"] = nan_mean(column)  # all-NaN (nothing to measure): NaN, without a warning
        rows.append(row)
    generations = pd.DataFrame(history, columns=list(Generation._fields))
    generations[["generation", "simulations", "accepted"]] = generations[
        ["generation", "simulations", "accepted"]].astype(int)
    return AbcResult(pd.DataFrame(rows), generations, stopped)
