"""The ABC-SMC moves' proposal scale (sim/calibration/abc_smc.py, proposal_scale): on a toy problem whose
ABC posterior is a Gaussian-shaped ball, the scale adapted generation by generation reaches the target acceptance
rate from a start far too wide (the former fixed factor 2 with many parameters) and from one far too narrow."""

import numpy as np
import pytest

from sim.calibration.abc_smc import (TARGET_ACCEPTANCE, Generation, MoveJob, _move_particle, proposal_scale)

DIMENSION = 12
SPREAD = 0.08  # the toy's distance is the Euclidean distance from the cube's centre in units of SPREAD
EPSILON = 2.5
POPULATION = 200
MOVES = 5


class BallSimulator:
    """Stands in for sim.calibration.simulator.Simulator: deterministic statistics (the point itself) and a
    distance whose set within epsilon is a ball, so the moves target the uniform distribution on it."""

    def seeds_for(self, rng):
        return ()

    def __call__(self, u, seeds=None):
        return np.asarray(u, float)[None, :]

    def distance(self, stats):
        return float(np.linalg.norm((stats[0] - 0.5) / SPREAD))


def _population(rng):
    """POPULATION points uniform in the ball of radius EPSILON (exact: direction times radius ~ r^(1/d))."""
    direction = rng.standard_normal((POPULATION, DIMENSION))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = EPSILON * rng.random(POPULATION) ** (1.0 / DIMENSION)
    return 0.5 + SPREAD * direction * radius[:, None]


def _acceptance(scale, generation):
    """The moves' acceptance rate at `scale` times the population's covariance, as run_abc measures it."""
    rng = np.random.default_rng(generation)
    u = _population(rng)
    chol = np.linalg.cholesky(scale * np.cov(u, rowvar=False))
    simulator = BallSimulator()
    accepted = sum(_move_particle(MoveJob(simulator, p, simulator(p), EPSILON, chol, MOVES, 1000 * generation + i))[3]
                   for i, p in enumerate(u))
    return accepted / (MOVES * POPULATION)


@pytest.mark.parametrize("start", [2.0, 0.02])
def test_adapted_scale_reaches_the_target_acceptance(start):
    first = _acceptance(start, 0)
    assert abs(first - TARGET_ACCEPTANCE) > 0.15, first  # the start is far off, so the adaptation has work to do
    history = [Generation(1, 1e9, POPULATION, POPULATION, 1.0, 0.0),
               Generation(2, EPSILON, POPULATION * MOVES, POPULATION, first, start)]
    rates = []
    for t in range(2, 9):
        scale = proposal_scale(history, DIMENSION)
        rates.append(_acceptance(scale, t))
        history.append(Generation(t + 1, EPSILON, POPULATION * MOVES, POPULATION, rates[-1], scale))
    assert all(abs(r - TARGET_ACCEPTANCE) < 0.07 for r in rates[-3:]), rates


def test_first_moves_use_the_random_walk_optimum():
    """2.38^2 / d before any move was measured (Roberts, Gelman & Gilks 1997); generation 0 (scale 0) has no
    moves and does not count."""
    assert proposal_scale([], DIMENSION) == pytest.approx(2.38 ** 2 / DIMENSION)
    assert proposal_scale([Generation(1, 1e9, 10, 10, 1.0, 0.0)], DIMENSION) == pytest.approx(2.38 ** 2 / DIMENSION)
    # an acceptance at the target keeps the scale; one above widens it, one below narrows it
    at = [Generation(2, 1.0, 10, 10, TARGET_ACCEPTANCE, 0.3)]
    assert proposal_scale(at, DIMENSION) == pytest.approx(0.3)
    assert proposal_scale([at[0]._replace(acceptance=0.6)], DIMENSION) > 0.3
    assert proposal_scale([at[0]._replace(acceptance=0.01)], DIMENSION) < 0.3
