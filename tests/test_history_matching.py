"""History matching (sim/calibration/history_matching.py): the emulators state honest uncertainty on a known smooth function;
the waves rule out what a toy simulator with a known answer makes implausible and keep the truth; an interrupted
run resumes to the same result; the calibration with history matching does not depend on the number of
workers."""

import math

import numpy as np
import pandas as pd
import pytest

from sim.calibration.calibration_config import Prior
from sim.running.executor import Executor
from sim.calibration.history_matching import (
    Emulator, HistorySettings, history_match, not_ruled_out, observed_region, position, region_distance,
)
from sim.inputs.targets import TARGETS_TOML, Target, load_targets
from conftest import SMALL


def _smooth(u):
    return np.sin(3.0 * u[:, 0]) + u[:, 1] ** 2 - 0.5 * u[:, 2]


# gbm: about 1 s on a quiet machine, but its OpenMP threads wait on each other when the cores are busy (154 s at
# load 9 on 2 cores, 1.2 s with OMP_NUM_THREADS=1), so it stays out of the fast tier.
@pytest.mark.parametrize("kind", ["gp", pytest.param("gbm", marks=pytest.mark.slow)])
def test_emulator_reproduces_a_smooth_function_within_its_uncertainty(kind):
    """Trained on noisy runs of a known smooth function, the emulator's mean is close to the function and the
    function lies within three of its standard deviations (emulator variance plus the stated noise) at nearly
    every unseen point; a constant guess would miss by far more."""
    rng = np.random.default_rng(0)
    noise_sd = 0.05
    x = rng.random((300, 3))
    y = _smooth(x) + noise_sd * rng.standard_normal(len(x))
    emulator = Emulator(kind, seed=1).fit(x, y, noise_sd ** 2)
    test = rng.random((400, 3))
    truth = _smooth(test)
    mean, var = emulator.predict(test)
    assert np.all(var >= 0)
    rmse = np.sqrt(np.mean((mean - truth) ** 2))
    assert rmse < 0.25 * truth.std(), rmse
    z = np.abs(mean - truth) / np.sqrt(var + noise_sd ** 2)
    assert np.mean(z <= 3.0) >= 0.95, np.mean(z <= 3.0)


def test_position_measures_the_discrepancy_of_every_target():
    """Implausibility uses the statistic's signed position; its distance outside the observed region must be the
    target's own discrepancy (below the clip), for every kind of target in targets.toml."""
    rng = np.random.default_rng(3)
    for t in load_targets(TARGETS_TOML, missing_ok=False):
        lo, hi = observed_region(t)
        for factor in rng.uniform(0.3, 3.0, 20):
            if t.statistic == "crossover":
                stat = (lo + factor) * t.tolerance
            elif t.statistic == "order":
                stat = factor - 1.5
            else:
                stat = t.value * factor
            distance = float(region_distance(np.array([position(t, stat)]), (lo, hi))[0])
            assert distance == pytest.approx(min(t.discrepancy(stat), 10.0), abs=1e-9), (t.id, stat)
        nothing = float(region_distance(np.array([position(t, math.nan)]), (lo, hi))[0])
        assert nothing == t.discrepancy(math.nan) == 10.0, t.id  # nothing to measure: a clear miss
        assert abs(position(t, 1e12 * (t.value or 1.0))) < 1e5, t.id  # clipped, even on a one-sided side


# --- a toy simulator with a known answer ---------------------------------------------------------------------
TRUTH = np.array([0.3, 0.7, 0.5])


def _toy_target(i: int, value: float) -> Target:
    return Target(id=f"T{i}", metric=f"m{i}", start="2024-01", end="2024-01", statistic="value", value=value,
                  tolerance=0.03, population="toy", source="toy", grade="S")


class ToySimulator:
    """Three statistics u0, u1 and u0 + u1 with seed noise (sd 0.02); the third parameter does nothing. The data
    are the noiseless statistics at TRUTH, so only a small neighbourhood of (0.3, 0.7) fits."""

    priors = tuple(Prior(f"p{i}", 0.0, 1.0) for i in range(3))
    targets = [_toy_target(0, TRUTH[0]), _toy_target(1, TRUTH[1]), _toy_target(2, TRUTH[0] + TRUTH[1])]

    class run:
        seeds = (0,)

    def __call__(self, u, seeds):
        out = []
        for seed in seeds:
            noise = 0.02 * np.random.default_rng(seed).standard_normal(3)
            out.append([u[0] + noise[0], u[1] + noise[1], u[0] + u[1] + noise[2]])
        return np.array(out)


TOY_SETTINGS = HistorySettings(waves=2, runs=120, noise_points=10, noise_seeds=3, candidates=20000, cutoff=3.0,
                               order=2, discrepancy=0.0, emulator="gp")


def _toy_match(tmp_path, **kwargs):
    with Executor(1) as executor:
        return history_match("toy", ToySimulator(), TOY_SETTINGS, 40, 11, 0, tmp_path, executor, progress=False,
                             **kwargs)


@pytest.mark.slow
def test_history_matching_rules_out_what_the_toy_makes_implausible_and_keeps_the_truth(tmp_path):
    result = _toy_match(tmp_path)
    waves = result.fitted
    assert len(waves) == 2
    truth_region = TRUTH + np.array([[0, 0, 0], [0, 0, 0.45], [0, 0, -0.45]])
    assert not_ruled_out(waves, truth_region).all()  # the truth survives, whatever the inert third parameter
    far = np.array([[0.9, 0.1, 0.5], [0.1, 0.1, 0.5], [0.6, 0.7, 0.5], [0.3, 0.3, 0.2]])
    assert not not_ruled_out(waves, far).any()
    # What is left is a small part of the prior: about |u0 - 0.3| and |u1 - 0.7| within a few tolerances.
    fractions = result.waves.nroy_fraction.to_numpy()
    assert fractions[-1] < 0.1, result.waves
    # ABC's starting sample lies inside, near the truth in the identified directions.
    assert len(result.initial_u) == 40 and result.initial_stats.shape == (40, 1, 3)
    assert np.all(np.abs(result.initial_u[:, :2] - TRUTH[:2]) < 0.25)


@pytest.mark.slow
def test_interrupted_history_matching_resumes_to_the_same_result(tmp_path):
    def stop_after_first(w):
        if w == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _toy_match(tmp_path / "resumed", on_wave=stop_after_first)
    assert (tmp_path / "resumed" / "toy" / "wave-000.npz").is_file()
    assert not (tmp_path / "resumed" / "toy" / "wave-001.npz").exists()
    resumed = _toy_match(tmp_path / "resumed")
    straight = _toy_match(tmp_path / "straight")
    np.testing.assert_array_equal(resumed.initial_u, straight.initial_u)
    np.testing.assert_array_equal(resumed.initial_stats, straight.initial_stats)
    untimed = [c for c in straight.waves.columns if not c.startswith("seconds")]
    pd.testing.assert_frame_equal(resumed.waves[untimed], straight.waves[untimed])


HM_CONFIG = """
[run]
n_agents = 300
end = "2026-01"
seeds = 1
seed_base = 1000
seed = 7
fresh_seeds = true

[history_matching]
waves = 1
runs = 24
noise_points = 4
noise_seeds = 3
candidates = 2000
cutoff = 3.0
order = 2
discrepancy = 0.5
emulator = "gp"
"""


@pytest.mark.slow
def test_history_matching_calibration_does_not_depend_on_the_number_of_workers(tmp_path):
    """History matching and then ABC on the model itself, with one worker and with two: the same posterior,
    because every simulation's seed follows from its index; the fit starts from history matching's sample."""
    from sim.calibration.calibrate import calibrate

    text = SMALL.format(population=8, generations=2)
    text = HM_CONFIG + text[text.index("[fit]"):]
    config = tmp_path / "config.toml"
    config.write_text(text)
    posteriors = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        summary = calibrate(config, out=out, workers=workers, progress=False, stages=("fit",))
        assert summary["history_simulations"] == 24
        posteriors.append(pd.read_csv(out / "posterior.csv"))
        history = pd.read_csv(out / "data" / "fit_history.csv")
        assert list(history.wave.astype(str)) == ["1", "ABC start"]
    pd.testing.assert_frame_equal(*posteriors)
    assert math.isclose(posteriors[0].weight.sum(), 1.0)


@pytest.mark.slow
def test_first_wave_runs_are_made_once_and_give_every_fit_exactly_its_own_statistics(tmp_path, monkeypatch):
    """The first wave's runs, shared between fits: a fit reading them gets exactly what it gets from making its own
    runs (same points, seeds, statistics, emulators, ABC start), whatever the number of workers; a fit to other
    figures (a recovery replicate's synthetic ones, on its own stream) makes no first-wave run and measures the
    stored runs exactly as its own runs would be measured; an interrupted fit resumes to the same result."""
    import sim.calibration.simulator as simulator_module
    from sim.calibration.calibration_config import load_config
    from sim.calibration.recovery import synthetic_targets
    from sim.calibration.simulator import Simulator, needed_metrics, run_once

    text = SMALL.format(population=8, generations=2)
    path = tmp_path / "config.toml"
    path.write_text(HM_CONFIG + text[text.index("[fit]"):])
    config = load_config(path)
    figures = [t for t in load_targets(TARGETS_TOML, missing_ok=False) if t.fit]
    truth = {"downloads_scale": 3e8, "sizes_exponent": 0.4, "openness_weight": 2.5}
    other = synthetic_targets(figures, run_once(truth, config.run, 5, needed_metrics(figures)))
    shared = tmp_path / "shared"

    def match(label, targets, stream, workers, share, on_wave=None):
        with Executor(workers) as executor:
            return history_match(label, Simulator(config.priors, targets, config.run), config.history, 8,
                                 config.seed, stream, tmp_path, executor, progress=False, on_wave=on_wave,
                                 shared=shared if share else None)

    def first_wave(label):
        return dict(np.load(tmp_path / label / "wave-000.npz"))

    def same(a, b):
        np.testing.assert_array_equal(a.initial_u, b.initial_u)
        np.testing.assert_array_equal(a.initial_stats, b.initial_stats)
        untimed = [c for c in a.waves.columns if not c.startswith("seconds")]
        pd.testing.assert_frame_equal(a.waves[untimed], b.waves[untimed])

    fit = match("fit", figures, 0, 2, True)  # makes the shared runs, in two workers
    assert len(list(shared.glob("*.npz"))) == 1
    own = match("own", figures, 0, 1, False)  # the fit as it was before sharing: its own runs
    same(fit, own)
    for key in ("u", "stats", "counts"):
        np.testing.assert_array_equal(first_wave("fit")[key], first_wave("own")[key])

    calls = []
    real = simulator_module.run_once
    monkeypatch.setattr(simulator_module, "run_once", lambda *args: calls.append(args) or real(*args))
    replicate = match("replicate", other, 3, 1, True)
    assert len(calls) == 8  # only ABC's starting sample: the first wave's 24 sets (36 runs) were read, not rerun
    monkeypatch.setattr(simulator_module, "run_once", real)
    own_other = match("own-other", other, 0, 1, False)  # its own runs of the same first wave (stream 0)
    for key in ("u", "stats", "counts"):
        np.testing.assert_array_equal(first_wave("replicate")[key], first_wave("own-other")[key])
    assert not np.array_equal(first_wave("replicate")["stats"], first_wave("fit")["stats"])  # other figures

    def stop(w):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        match("interrupted", other, 3, 2, True, on_wave=stop)
    same(match("interrupted", other, 3, 2, True), replicate)


@pytest.mark.parametrize("workers", [1, 2])
def test_screening_in_blocks_gives_the_same_answer_whatever_the_workers(tmp_path, workers):
    """Candidates screened in blocks by the executor's workers: the same points kept as screened in one piece."""
    waves = _toy_match(tmp_path).fitted
    points = np.random.default_rng(3).random((30_000, 3))
    points[:200, :2] = TRUTH[:2] + 0.02 * np.random.default_rng(4).standard_normal((200, 2))  # some survivors
    whole = not_ruled_out(waves, points)
    assert 0 < whole.sum() < len(points)
    with Executor(workers) as executor:
        np.testing.assert_array_equal(not_ruled_out(waves, points, executor), whole)


def test_recovery_history_waves_default_to_the_fits_and_never_exceed_them(tmp_path):
    """[recovery] history_waves: absent, recovery fits match as many waves as the main fit; set, that many, but
    never more than [history_matching] waves (so --quick's single wave binds it); a bad value names the key."""
    from sim.calibration.calibration_config import load_config
    from sim.core.checks import InputError
    from sim.calibration.calibration_config import CONFIG_TOML as CONFIG

    text = CONFIG.read_text()
    assert load_config(CONFIG).recovery_history_waves == 1 < load_config(CONFIG).history.waves
    without = tmp_path / "without.toml"
    without.write_text(text.replace("history_waves = 1\n", ""))
    assert load_config(without).recovery_history_waves == load_config(without).history.waves == 2
    more = tmp_path / "more.toml"
    more.write_text(text.replace("history_waves = 1\n", "history_waves = 5\n"))
    assert load_config(more).recovery_history_waves == 2 and load_config(more, quick=True).recovery_history_waves == 1
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("history_waves = 1\n", "history_waves = -1\n"))
    with pytest.raises(InputError, match="recovery.history_waves"):
        load_config(bad)
