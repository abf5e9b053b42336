"""Missing ECIs filled from the release's most accurate benchmark (sim/core/catalogue.py `_imputed_eci`): the rule,
its out-of-sample error, and hindcasts that fit the lines on the rows released by their cutoff alone."""

import numpy as np
import pytest

from sim.core.catalogue import (BENCHMARKS, MIN_PAIRS, _float, _imputed_eci, _rows, _rows_until, benchmark_line,
                                benchmark_lines, releases)


def synthetic_rows(rng, noise: dict[str, float], n: int = 30) -> list[dict]:
    """Catalogue-like rows: ECI plus each benchmark a line of it with its own noise; blank where unrated."""
    eci = rng.uniform(100, 150, n)
    rows = [{"eci": f"{e:.3f}", **{b: "" for b in BENCHMARKS}} for e in eci]
    for name, sd in noise.items():
        for row, e in zip(rows, eci):
            row[name] = f"{2 * e + 50 + rng.normal(0, sd):.3f}"
    return rows


def test_a_missing_eci_comes_from_the_benchmark_with_the_smallest_out_of_sample_error():
    rng = np.random.default_rng(4)
    rows = synthetic_rows(rng, {"aa_index_v3": 12.0, "gpqa_diamond": 2.0, "arena_elo_20250804": 6.0})
    rows += [{"eci": "", **{b: "" for b in BENCHMARKS}} for _ in range(3)]
    rows[-3].update(aa_index_v3="300", gpqa_diamond="300", arena_elo_20250804="300")  # all three: GPQA
    rows[-2].update(aa_index_v3="300", arena_elo_20250804="300")  # no GPQA: the arena, not AA
    eci, sd, source = _imputed_eci(rows)
    lines = {line.benchmark: line for line in benchmark_lines(rows)}
    assert source[-3:] == ["gpqa_diamond", "arena_elo_20250804", ""]
    assert sd[-3] == lines["gpqa_diamond"].loo_sd < lines["arena_elo_20250804"].loo_sd == sd[-2]
    assert eci[-3] == pytest.approx(lines["gpqa_diamond"].intercept + 300 * lines["gpqa_diamond"].slope)
    assert np.isnan(eci[-1]) and sd[-1] == 0  # no figure at all: left to the lab's lag


def test_every_imputed_catalogue_release_uses_its_best_benchmark_and_says_which():
    lines = benchmark_lines(_rows())
    by_model = {r["model"]: r for r in _rows()}
    imputed = [r for r in releases() if r.capability_from in BENCHMARKS]
    assert len(imputed) >= 15
    for release in imputed:
        row = by_model[release.model]
        best = next(line for line in lines if row[line.benchmark].strip())
        assert (release.capability_from, release.capability_sd) == (best.benchmark, best.loo_sd), release.model
        assert release.capability == pytest.approx(best.intercept + best.slope * _float(row[best.benchmark]))
    gpt4o = next(r for r in imputed if r.model == "GPT-4o")  # rated on the Aug-2025 arena too
    assert gpt4o.capability_from == "gpqa_diamond"


def test_the_leave_one_out_error_is_the_refit_error_and_at_least_the_in_sample_one():
    rng = np.random.default_rng(0)
    score = rng.uniform(0, 10, 12)
    eci = 3 * score + rng.normal(0, 1, 12)
    line = benchmark_line("x", score, eci)
    refits = []
    for i in range(12):
        keep = np.arange(12) != i
        slope, intercept = np.polyfit(score[keep], eci[keep], 1)
        refits.append(eci[i] - (intercept + slope * score[i]))
    assert line.loo_sd == pytest.approx(np.sqrt(np.mean(np.square(refits))))
    for line in benchmark_lines(_rows()):
        assert line.pairs >= MIN_PAIRS and line.loo_sd >= line.sd, line.benchmark


@pytest.mark.parametrize("cutoff", ["2024-01", "2025-03"])
def test_a_hindcast_fits_the_imputation_lines_on_the_rows_released_by_its_cutoff(cutoff):
    known = _rows_until(cutoff)
    lines = {line.benchmark: line for line in benchmark_lines(known)}
    full = {line.benchmark: line for line in benchmark_lines(_rows())}
    imputed = [r for r in releases(cutoff) if r.capability_from in BENCHMARKS]
    assert imputed and all(r.date <= cutoff for r in releases(cutoff))
    # Missing is not zero, nor NaN, even before a lab has rated releases (Qwen-72B at 2024-01: its lag class's).
    assert all(np.isfinite([r.capability, r.capability_sd]).all() for r in releases(cutoff))
    for release in imputed:
        assert release.capability_sd == lines[release.capability_from].loo_sd
        assert release.capability_sd != full[release.capability_from].loo_sd  # not the whole catalogue's line
    if cutoff == "2024-01":  # only the Aug-2025 arena has MIN_PAIRS releases rated with ECI by then
        assert set(lines) == {"arena_elo_20250804"}
