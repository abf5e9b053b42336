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


def cmd_project(args) -> int:
    from sim import project

    if args.list:
        for name in project.available():
            print(f"{name}: {' '.join(project.load_spec(name).description.split())}")
        return 0
    try:
        report = project.project(args.scenarios or None, out=Path(args.out), members=args.members, agents=args.agents,
                                 workers=args.workers, base_seed=args.seed, plots=not args.no_plots)
    except project.ProjectionError as err:
        raise InputError(str(err)) from None
    print(f"projected {len(report.scenarios)} scenarios x {report.members} members at {report.agents} agents "
          f"({report.ran} runs now, {report.reused} reused from checkpoints); summary: {report.summary}")
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

    from sim.project import DEFAULT_MEMBERS, OUT_DIR, PROJECTION_AGENTS

    proj = commands.add_parser(
        "project", help="project scenarios to 2030 with paired ensembles and write results/projections/",
        description="Run every scenario (default: all in scenarios/; baseline always) as an ensemble where member "
        "k uses the same seed and calibration-posterior draw in every scenario, then write OUT/<scenario>/ "
        "(quantiles.csv, diff_vs_baseline.csv, regimes.csv, manifest.json, fan charts) and OUT/summary.md with "
        "comparison charts. Finished members are checkpointed: an interrupted run resumes where it stopped.",
    )
    proj.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                      help="scenario names (e.g. security_bans), .toml paths, or several joined by '+' to compose "
                      "them (security_bans+us_open_push); default: all")
    proj.add_argument("--members", type=int, default=DEFAULT_MEMBERS,
                      help=f"ensemble members per scenario (default {DEFAULT_MEMBERS})")
    proj.add_argument("--agents", type=int, default=PROJECTION_AGENTS,
                      help=f"agents per run (default {PROJECTION_AGENTS})")
    proj.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    proj.add_argument("--seed", type=int, default=0, help="first seed; member k uses seed+k (default 0)")
    proj.add_argument("--out", default=str(OUT_DIR), help=f"output folder (default {OUT_DIR})")
    proj.add_argument("--no-plots", action="store_true", help="write tables and summary only")
    proj.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    proj.set_defaults(func=cmd_project)
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
