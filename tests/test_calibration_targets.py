"""Calibration targets: the real file loads, bad files are refused with a clear message, and each statistic
measures what it says on a hand-made run."""

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core.calendar import month_label, parse_month
from sim.calibration.calibration_config import load_config
from sim.core.checks import InputError
from sim.cli import main
from sim.inputs.targets import CROSSOVER_HORIZON, TARGETS_TOML, load_targets

GOOD = """
[[target]]
id = "A1"
metric = "or_share_cn"
start = "2024-11"
end = "2024-12"
statistic = "mean"
value = 0.012
tolerance = 0.015
population = "p"
source = "s"
grade = "S"
"""


def test_project_targets_cover_the_issue_list():
    targets = {t.id: t for t in load_targets(TARGETS_TOML, missing_ok=False)}
    # OpenRouter Chinese share (start, peak, average), open share (average, late), concentration, Qwen/Llama
    # crossover, Qwen totals, mid-2025 derivatives, China/US downloads, US enterprise share.
    for required in ("OR1", "OR2", "OR3", "OR4", "OR5", "OR7a", "OR8a", "HF1a", "HF2", "HF5a", "HF5b", "HF6a",
                     "HF6b", "HF6c", "ENT1", "ENT2"):
        assert required in targets
    assert targets["HF2"].statistic == "crossover" and targets["HF2"].other == "hf_downloads_cum_llama"
    assert targets["OR2"].statistic == "max"
    assert all(t.source and t.grade and t.population for t in targets.values())


def _write(tmp_path, text):
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def _refusal(path: Path, text: str, old: str, new: str, load, error) -> str:
    """Write `text` with `old` replaced by `new` to `path`; the message `load(path)` refuses it with."""
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(error) as err:
        load(path)
    return str(err.value)


@pytest.mark.parametrize("old, new, key, words", [
    ('metric = "or_share_cn"', 'metric = "or_share_martian"', "metric", "unknown observable"),
    ('start = "2024-11"', 'start = "2024-13"', "start", "not a month"),
    ('start = "2024-11"', 'start = "2025-02"', "end", "before start"),
    ('statistic = "mean"', 'statistic = "median"', "statistic", "not allowed"),
    ("tolerance = 0.015", "tolerance = -1", "tolerance", "positive"),
    ("tolerance = 0.015\n", "", "tolerance", "missing"),
    ('grade = "S"', 'grade = "A+"', "grade", "not allowed"),
    ('grade = "S"', 'grade = "S"\nprior = 2', "prior", "unknown key"),
    ('statistic = "mean"', 'statistic = "ratio_mean"', "denominator", "required"),
    ('statistic = "mean"', 'statistic = "crossover"', "value", "not used"),
    ('grade = "S"', 'grade = "S"\nother = "or_share_us"', "other", "only used"),
    ("value = 0.012", 'value = "1.2%"', "value", "must be a number"),
    ('grade = "S"', 'grade = "S"\nweight = 0', "weight", "must be a number in (0, 10]"),
    ('grade = "S"', 'grade = "S"\nscale = "cubic"', "scale", "not allowed"),
])
def test_bad_targets_are_refused(tmp_path, old, new, key, words):
    path = tmp_path / "targets.toml"
    message = _refusal(path, GOOD, old, new, lambda p: load_targets(p, missing_ok=False), InputError)
    assert str(path) in message and f".{key}" in message and words in message


def test_duplicate_ids_and_empty_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="duplicate id"):
        load_targets(_write(tmp_path, GOOD + GOOD), missing_ok=False)
    with pytest.raises(InputError, match="at least one"):
        load_targets(_write(tmp_path, "# nothing\n"), missing_ok=False)
    with pytest.raises(InputError, match="not valid TOML"):
        load_targets(_write(tmp_path, "[[target]\n"), missing_ok=False)


def test_cli_refuses_bad_targets_without_writing(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace('"2024-11"', '"Nov 2024"'))
    out = tmp_path / "out"
    code = main(["calibrate", "--quick", "--targets", str(path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "start" in err[0] and "YYYY-MM" in err[0]
    assert not out.exists()


def test_cli_refuses_targets_after_the_calibration_window(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace('end = "2024-12"', 'end = "2027-01"'))
    code = main(["calibrate", "--quick", "--targets", str(path), "--out", str(tmp_path / "out")])
    assert code == 2 and "after the calibration runs end" in capsys.readouterr().err


CONFIG = Path(__file__).resolve().parent.parent / "calibration" / "config.toml"


def test_every_stages_predictive_seeds_stay_in_the_checked_span():
    """The stages' predictive seed offsets, plus their draws, stay below PREDICTIVE_SEED_SPAN, the range the config
    check keeps clear of the fixed seeds and below the fresh ones."""
    from sim.calibration import ablation, hindcast
    from sim.calibration.calibrate import BEST_CANDIDATES, BEST_SEED_OFFSET, BEST_SEEDS, PRIOR_SEED_OFFSET
    from sim.calibration.calibration_config import PREDICTIVE_SEED_SPAN

    config = load_config(CONFIG)
    assert config.draws < hindcast.SEED_STRIDE and config.hindcast_draws < hindcast.SEED_STRIDE // 2
    last_hindcast = (len(config.hindcast_cutoffs) + 2) * hindcast.SEED_STRIDE
    last_ablation = ablation.SEED_OFFSET + 1000 * 20 + config.ablation_draws
    assert last_hindcast <= ablation.SEED_OFFSET < last_ablation <= PRIOR_SEED_OFFSET
    assert PRIOR_SEED_OFFSET + config.draws <= BEST_SEED_OFFSET
    assert BEST_SEED_OFFSET + BEST_CANDIDATES * BEST_SEEDS <= PREDICTIVE_SEED_SPAN


@pytest.mark.parametrize("old, new, key, words", [
    ("[priors.peer_weight]\nlow = 0.0", "[priors.peer_weight]\nlow = -3.0", "priors.peer_weight", "low <"),
    ("data_seed = 777\nn_agents = 2000\n", "data_seed = 777\n", "recovery.n_agents", "missing"),
    ("data_seed = 777\nn_agents = 2000", "data_seed = 777\nn_agents = 0", "recovery.n_agents", "n_agents"),
    ("replicates = 5", "replicates = 0", "recovery.replicates", "in [1, 100]"),
    ("replicates = 5", "replicates = 5\nrepeats = 2", "recovery.repeats", "unknown key"),
    ("data_seed = 777", "data_seed = 800", "recovery.data_seed", "must differ from the calibration seeds"),
    ("seed_base = 500000", "seed_base = 999", "predictive.seed_base", "must not include run.seed_base's"),
    ("seed_base = 500000", "seed_base = 7000000", "predictive.seed_base", "6000000"),
    ('emulator = "gbm"', 'emulator = "nn"', "history_matching.emulator", "allowed: gp, gbm"),
    ("fresh_seeds = true", "fresh_seeds = false", "run.fresh_seeds", "fresh seeds"),
    ("noise_points = 30", "noise_points = 1", "history_matching.noise_points", "at least 2 points"),
    ("waves = 2", "waves = 2\nrounds = 2", "history_matching.rounds", "unknown key"),
])
def test_bad_config_is_refused(tmp_path, old, new, key, words):
    """One message naming the file once, the key and what is allowed. (data_seed 800: replicate 2's data seeds
    1000-1008 would include the calibration seeds 1000 and 1001.)"""
    bad = tmp_path / "config.toml"
    message = _refusal(bad, CONFIG.read_text(), old, new, load_config, InputError)
    assert key in message and words in message and message.count(str(bad)) == 1, message


def test_cli_refuses_bad_config(tmp_path, capsys):
    bad = tmp_path / "config.toml"
    bad.write_text(CONFIG.read_text().replace("[priors.peer_weight]\nlow = 0.0", "[priors.peer_weight]\nlow = -3.0"))
    code = main(["calibrate", "--quick", "--config", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "priors.peer_weight" in err[0] and not (tmp_path / "out").exists()


def _run(columns: dict[str, list[float]], start="2025-01") -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    index = [month_label(parse_month(start) + i) for i in range(n)]
    return pd.DataFrame(columns, index=index)


def _target(tmp_path, **fields):
    spec = {"id": "X", "metric": "hf_downloads_cum_qwen", "start": "2025-02", "end": "2025-03",
            "statistic": "mean", "value": 1.0, "tolerance": 1.0, "population": "p", "source": "s", "grade": "S"}
    spec.update(fields)
    lines = ["[[target]]"] + [f"{k} = {v!r}".replace("'", '"') if not isinstance(v, list) else
                              f"{k} = [{', '.join(repr(x).replace(chr(39), chr(34)) for x in v)}]"
                              for k, v in spec.items() if v is not None]
    return load_targets(_write(tmp_path, "\n".join(lines) + "\n"), missing_ok=False)[0]


def test_statistics_on_a_hand_made_run(tmp_path):
    run = _run({"hf_downloads_cum_qwen": [0, 1, 4, 9, 16], "hf_downloads_cum_llama": [2, 4, 6, 8, 10],
                "hf_downloads_cum_us": [1, 2, 2, 3, 5]})
    # window 2025-02..2025-03 = rows 2 and 3
    assert _target(tmp_path).statistic_of(run) == pytest.approx(2.5)  # mean of 1 and 4
    assert _target(tmp_path, statistic="increase").statistic_of(run) == pytest.approx(4 - 0)
    assert _target(tmp_path, statistic="max").statistic_of(run) == pytest.approx(4)
    ratio = _target(tmp_path, statistic="ratio_increase", denominator=["hf_downloads_cum_us"])
    assert ratio.statistic_of(run) == pytest.approx(4 / 1)
    # Qwen (0,1,4,9,16) first reaches Llama (2,4,6,8,10) in the 4th month, 2025-04.
    cross = _target(tmp_path, statistic="crossover", other="hf_downloads_cum_llama", value=None, tolerance=1)
    assert month_label(int(cross.statistic_of(run))) == "2025-04"
    assert cross.hit(cross.statistic_of(run))  # 2025-04 is within one month of 2025-02..2025-03
    assert not cross.hit(parse_month("2025-06"))
    # Not yet crossed: extrapolated from the closing speed of the last three months (
    # gap 6 three months before the end, 3 at the end: closes by 1 a month -> 3 months after 2025-05), or the
    # horizon when the gap is not closing.
    closing = _run({"hf_downloads_cum_qwen": [0, 2, 4, 6, 8], "hf_downloads_cum_llama": [5, 8, 9, 10, 11]})
    assert month_label(int(cross.statistic_of(closing))) == "2025-08"
    never = _run({"hf_downloads_cum_qwen": [0, 0, 0, 0], "hf_downloads_cum_llama": [1, 2, 3, 4]})
    assert cross.statistic_of(never) == parse_month("2025-04") + CROSSOVER_HORIZON
    assert cross.discrepancy(cross.statistic_of(never)) > cross.discrepancy(cross.statistic_of(closing)) > 1
    order = _target(tmp_path, statistic="order", followed_by=["hf_downloads_cum_us"], value=None, tolerance=0.3)
    gap = order.statistic_of(run)
    assert gap == pytest.approx(math.log(2.5 / 2)) and order.hit(gap)
    swapped = _target(tmp_path, statistic="order", metric="hf_downloads_cum_us",
                      followed_by=["hf_downloads_cum_qwen"], value=None, tolerance=0.3)
    assert not swapped.hit(swapped.statistic_of(run))
    assert swapped.discrepancy(swapped.statistic_of(run)) == pytest.approx(math.log(2.5 / 2) / 0.3)


def test_one_sided_conditions(tmp_path):
    above = _target(tmp_path, condition="above", value=0.5, tolerance=0.1)
    assert above.hit(0.6) and above.discrepancy(0.6) == 0
    assert not above.hit(0.45) and above.discrepancy(0.45) == pytest.approx(0.5)
    within = _target(tmp_path, value=0.5, tolerance=0.1)
    assert within.hit(0.45) and not within.hit(0.65)
    assert not within.hit(float("nan")) and np.isfinite(within.discrepancy(float("nan")))


def test_fit_distance_caps_each_figure_so_one_far_miss_cannot_dominate(tmp_path):
    from sim.calibration.simulator import DISCREPANCY_CAP, seed_distance

    near = _target(tmp_path, value=0.5, tolerance=0.1)
    far = replace(near, id="FAR", weight=2.0)
    expected = (1.0 * 1.0 + 2.0 * DISCREPANCY_CAP) / 3.0  # near: 1 tolerance off; far: ~495 tolerances off
    assert seed_distance([near, far], [0.6, 50.0]) == pytest.approx(expected)
    assert seed_distance([near, far], [0.5, 50.0]) < expected  # the near figure still counts
