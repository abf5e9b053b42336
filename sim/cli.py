"""The `odsim` command line. Each command is a function taking parsed arguments and returning an exit code.

Bad input (a scenario file, a spec) is reported as one line naming the file, the key and what is allowed,
with exit code 2 and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.parameters import check_value
from sim.scenario import SCENARIO_DIR, ScenarioError

RESULTS_DIR = Path("results")


class InputError(ValueError):
    """Bad user input other than a scenario file (a spec, an option); the message says what is allowed."""


def cmd_run(args) -> int:
    from sim.outputs import run_scenario
    from sim.scenario import load_scenario

    if args.seeds is not None and args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {args.seeds}")
    if args.agents is not None:
        try:
            check_value("n_agents", args.agents)
        except ValueError as err:
            raise InputError(f"--agents: {err}") from None
    paths = args.scenarios or [SCENARIO_DIR / "baseline.toml"]
    scenarios = [load_scenario(p) for p in paths]  # validate every file before running any
    for scenario in scenarios:
        out = run_scenario(scenario, Path(args.out), seeds=args.seeds, n_agents=args.agents, workers=args.workers,
                           base_seed=args.seed)
        print(f"{scenario.name}: wrote {out}")
    return 0


def cmd_calibrate(args) -> int:
    from sim.calibrate import CONFIG_TOML, CALIBRATION_DIR, CalibrationError, calibrate, load_config
    from sim.targets import TARGETS_TOML, TargetError, load_targets

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    config = Path(args.config) if args.config else CONFIG_TOML
    targets = Path(args.targets) if args.targets else TARGETS_TOML
    out = Path(args.out) if args.out else CALIBRATION_DIR
    try:
        if args.report:
            from sim.calibration_report import write_report

            load_config(config, quick=args.quick)
            if not (out / "data" / "summary.json").is_file():
                raise InputError(f"{out / 'data'}: no calibration results; run `odsim calibrate` first")
            print(f"wrote {write_report(out, load_targets(targets, missing_ok=False))}")
            return 0
        summary = calibrate(config, targets, out, quick=args.quick, workers=args.workers, scheduler=args.scheduler,
                            fresh=args.fresh)
    except (CalibrationError, TargetError) as err:
        raise InputError(str(err)) from None
    print(f"calibration {summary['fingerprint']}: wrote {out / 'posterior.csv'}, {out / 'best.toml'}, "
          f"{out / 'report.md'} (seconds: {summary['seconds']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odsim",
        description="Agent-based simulation of open-weight and closed AI model diffusion (2023-2030).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="run scenario ensembles and write results/<scenario>/",
        description="Run each scenario file as an ensemble of seeds and write timeseries.csv (date, metric, mean, "
        "q05, q50, q95), summary.md, manifest.json and PNG plots to OUT/<scenario>/. With no file, runs "
        "scenarios/baseline.toml.",
    )
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO.toml", help="scenario files (default: baseline)")
    run.add_argument("--seeds", type=int, help="ensemble members (default: the file's [run] seeds)")
    run.add_argument("--agents", type=int, help="agents per run (default: the file's n_agents)")
    run.add_argument("--seed", type=int, default=0, help="first seed; member k uses seed+k (default 0)")
    run.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    run.add_argument("--out", default=str(RESULTS_DIR), help="output folder (default: results)")
    run.set_defaults(func=cmd_run)

    cal = commands.add_parser(
        "calibrate", help="fit behavioural parameters to the public figures (ABC-SMC) and validate the fit",
        description="Fit the parameters in calibration/config.toml to calibration/targets.toml by ABC-SMC, then run "
        "the posterior-predictive check, the out-of-sample test, the logistic baseline and a parameter-recovery "
        "test. Writes posterior.csv (used by `odsim run` from then on), best.toml, report.md, figures/ and data/. "
        "An interrupted calibration resumes where it stopped when rerun.",
    )
    cal.add_argument("--quick", action="store_true", help="tiny budget for tests (results not meaningful)")
    cal.add_argument("--report", action="store_true", help="only regenerate report.md and figures from data/")
    cal.add_argument("--config", help="settings file (default: calibration/config.toml)")
    cal.add_argument("--targets", help="targets file (default: calibration/targets.toml)")
    cal.add_argument("--out", help="output folder (default: calibration)")
    cal.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    cal.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    cal.add_argument("--fresh", action="store_true", help="discard stored progress for these settings and restart")
    cal.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, InputError) as err:
        print(f"odsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("odsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
