"""Where the calibration's noise floor comes from, at several agent counts: the fit's noise floor at a parameter set
(default: calibration/best.toml) with every run's uncertain inputs drawn, as in the fit, and with them at their
central values (sim/calibration/recovery.py, noise_floor_split). The calibration report prints the same split at
the fit's own agent count; this tool adds the agent counts, to tell the paths' part (falls with more agents) from
the inputs' part (does not).

    .venv/bin/python tools/noise_floor_split.py [--agents 2000 8000] [--data-seeds 24] [--workers 2]
        [--params calibration/best.toml] [--set NAME=VALUE ...] [--first-seed 900000] [--targets 12]

`--first-seed` moves the block of seeds: the floor is a 90% quantile over a few dozen runs, and differs by a tenth
or more from block to block.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.calibration.calibration_config import load_config  # noqa: E402
from sim.calibration.recovery import noise_floor_split  # noqa: E402
from sim.inputs.targets import load_targets  # noqa: E402
from sim.running.executor import Executor  # noqa: E402

FIRST_SEED = 900_000  # outside the calibration's fit, predictive and recovery seeds


def assignment(text: str) -> tuple[str, float]:
    """NAME=VALUE on the command line: a model parameter set on top of the parameter set's values."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected NAME=VALUE")
    return name.strip(), float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--data-seeds", type=int, default=24)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--params", type=Path, default=ROOT / "calibration" / "best.toml")
    parser.add_argument("--set", type=assignment, nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--targets", type=int, default=12, help="targets listed per agent count")
    args = parser.parse_args(argv)
    config = load_config()
    fitted = [t for t in load_targets() if t.fit]
    params = {**tomllib.loads(args.params.read_text())["parameters"], **dict(args.set)}
    with Executor(args.workers, None) as executor:
        for n in args.agents:
            start = time.perf_counter()
            floors, table = noise_floor_split(params, fitted, replace(config.run, n_agents=n), args.first_seed,
                                              args.data_seeds, executor)
            print(f"{n} agents: floor {floors['drawn']:.3f} with the inputs drawn, {floors['central']:.3f} with "
                  f"them central ({args.data_seeds} data seeds, {time.perf_counter() - start:.0f} s)")
            table = table.assign(gap=table.drawn - table.central).sort_values("gap", ascending=False)
            print(table.head(args.targets).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
