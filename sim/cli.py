"""The `odsim` command line. Each command is a function taking parsed arguments and returning an exit code.

Bad input (a file, or an option: all options are checked in one place, `check_options`, before any command
runs) is reported as one line naming the file or option, the key and what is allowed, with exit code 2 and
nothing written. The library names its own arguments in errors; only this layer words them as options.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from sim.core import checks as check
from sim.core.checks import InputError
from sim.inputs.scenario import MAX_SEEDS, SCENARIO_DIR

RESULTS_DIR = Path("results")

# Command-line options checked before any command runs (one place): whole-number option -> (least, most) allowed.
WHOLE = {"seeds": (1, MAX_SEEDS), "members": (1, None), "workers": (1, None), "boxes": (1, None), "seed": (0, None),
         "port": (1, 65535)}
POSITIVE = ("connect_timeout", "checkpoint_every")  # seconds
OUTPUTS = {"run": "results folder", "project": "projections folder", "sweep": "sweep folder",
           "sensitivity": "sweep folder", "calibrate": "calibration folder"}  # commands whose --out they write


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_options(args) -> None:
    """Every option a command was given, checked before any work, so a bad one is one line naming it."""
    given = {name: value for name, value in vars(args).items() if value is not None}
    for name, (least, most) in WHOLE.items():
        if name in given:
            check.whole(_option(name), "", given[name], least, most)
    for name in POSITIVE:
        if name in given:
            check.number(_option(name), "", given[name], 0.0, low_open=True)
    if "agents" in given:
        check.parameter("--agents", "", "n_agents", given["agents"])
    if "min_density" in given:
        check.number("--min-density", "", given["min_density"], 0.0, 1.0, low_open=True)
    if given.get("month"):
        check.month("--month", "", given["month"])
    if given.get("workers") and given.get("scheduler"):
        check.fail("--workers", "", "give --workers or --scheduler, not both (Dask workers are set up on the "
                   "cluster)")
    if args.command in OUTPUTS and given.get("out"):
        check_out(Path(given["out"]), OUTPUTS[args.command])


def check_out(folder: Path, what: str) -> None:
    """--out must be a folder that can be created or written, checked before any work (nothing is created)."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        check.fail("--out", "", f"{folder} is a file; give the {what} to write into")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        check.fail("--out", "", f"{folder} cannot be created: {existing} is a file; give the {what} to write into")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        check.fail("--out", "", f"{folder} cannot be written ({err.strerror or err}); give a writable {what}")


def cmd_run(args) -> int:
    from sim.running.outputs import run_scenarios
    from sim.inputs.scenario import load_scenario

    paths = args.scenarios or [SCENARIO_DIR / "baseline.toml"]
    scenarios = [load_scenario(p) for p in paths]  # validate every file before running any
    with _executor(args) as executor:
        for out in run_scenarios(scenarios, Path(args.out), executor, seeds=args.seeds, n_agents=args.agents,
                                 base_seed=args.seed, progress=not args.quiet):
            print(f"{out.name}: wrote {out}")
    return 0


def _executor(args):
    """The executor the options ask for: --workers local processes or a --scheduler (reached before any work;
    check_options refuses both at once)."""
    from sim.running.executor import Executor

    return Executor(args.workers, args.scheduler, getattr(args, "connect_timeout", 10.0))


def _sweep_folder(spec, out):
    from sim.exploration.sweep import default_folder

    return Path(out) if out else default_folder(spec)


def _run_sweep(args, spec):
    """Shared by `sweep` and `sensitivity`: refuse a foreign folder, connect, run."""
    from sim.exploration.sweep import prepare, run_sweep

    folder = _sweep_folder(spec, args.out)
    check_out(folder, "sweep folder")
    prepare(spec, folder)
    with _executor(args) as executor:
        print(f"{spec.name}: {spec.n_runs()} runs ({spec.n_points()} {spec.design} points x {spec.replicates} "
              f"replicates), {executor.description}, into {folder}", file=sys.stderr)
        return run_sweep(spec, folder, executor, progress=not args.quiet, checkpoint_seconds=args.checkpoint_every)


def cmd_sweep(args) -> int:
    from sim.inputs.sweep_spec import load_spec

    spec = load_spec(args.spec)
    result = _run_sweep(args, spec)
    print(f"{spec.name}: {result.runs} runs ({result.computed} computed now) in {result.table}")
    return 0


def cmd_sensitivity(args) -> int:
    from sim.exploration import sensitivity
    from sim.inputs.sweep_spec import load_spec

    spec = load_spec(args.spec)
    sensitivity.check_method(spec)  # before any run
    result = _run_sweep(args, spec)
    out = sensitivity.write(spec, result.folder)
    print((out / "summary.md").read_text())
    print(f"{spec.name}: wrote {out}")
    return 0


def cmd_discover(args) -> int:
    from sim.exploration.discover import discover
    from sim.inputs.sweep_spec import load_spec

    target = Path(args.sweep)
    folder = _sweep_folder(load_spec(target), args.out) if target.suffix == ".toml" else target
    if not folder.is_dir():
        raise InputError(folder, "", "no such sweep folder (give a sweep folder or its spec file)")
    out, text = discover(folder, args.outcome, args.month, args.min_density, args.boxes)
    print(text)
    print(f"wrote {out}")
    return 0


def _sweep_options(command) -> None:
    command.add_argument("spec", metavar="SPEC.toml", help="sweep spec (see scenarios/sweeps/small.toml)")
    command.add_argument("--out", help="output folder (default: results/sweeps/<name>)")
    command.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    command.add_argument("--scheduler", metavar="ADDRESS",
                         help="send runs to a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786")
    command.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                         help="how long to try reaching the Dask scheduler (default 10)")
    command.add_argument("--checkpoint-every", type=float, default=5.0, metavar="SECONDS",
                         help="write finished runs to disk at least this often (default 5)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_viz(args) -> int:
    """Serve the browser explorer (sim/app.py) with Solara until interrupted."""
    import os
    import socket
    import warnings

    try:  # fail with one clear line, not a server traceback, when the address cannot be used
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as err:
        raise InputError(f"--host {args.host} --port {args.port}", "", f"cannot listen there "
                         f"({err.strerror or err}); choose another --port, or a --host of this machine") from None
    # Front-end assets come from the local copy (solara-assets) through Solara's asset proxy: no CDN needed.
    # No usage telemetry and no version check: both would call out to the internet.
    os.environ.setdefault("SOLARA_ASSETS_PROXY", "true")
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "false"
    os.environ.setdefault("SOLARA_THEME_SHOW_BANNER", "false")  # its corner banner covers a chart
    # Solara warns on every page load over plain http to a host other than "localhost"; nothing to act on here.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")
    from solara.__main__ import cli

    app = Path(__file__).resolve().parent / "app.py"
    shown = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host  # all interfaces: use our name
    url = f"http://{shown}:{args.port}"
    print(f"odsim viz: serving the explorer at {url} (Ctrl+C stops it)", flush=True)
    cli.main(args=["run", str(app), "--host", args.host, "--port", str(args.port), "--production", "--no-open",
                   "--no-check-version", "--log-level", "warning"], prog_name="odsim viz", standalone_mode=False)


def cmd_calibrate(args) -> int:
    from sim.calibration.calibrate import CALIBRATION_DIR, CONFIG_TOML, calibrate  # module attributes tests may point elsewhere
    from sim.calibration.calibration_config import check_targets, load_config
    from sim.inputs.targets import TARGETS_TOML, load_targets

    config = Path(args.config) if args.config else CONFIG_TOML
    targets = Path(args.targets) if args.targets else TARGETS_TOML
    if args.adopt:
        from sim.calibration.adoption import adopt

        print(adopt(Path(args.adopt), CALIBRATION_DIR))
        return 0
    # A calibration never writes into calibration/ by itself: only --adopt changes what runs use.
    out = Path(args.out) if args.out else RESULTS_DIR / ("calibration-quick" if args.quick else "calibration")
    if out.resolve() == CALIBRATION_DIR.resolve() and args.quick:
        raise InputError("--out", "", f"{out}: a --quick calibration may not write into the adopted calibration "
                         "folder")
    check_out(out, "calibration folder")
    settings, observed = load_config(config, quick=args.quick), load_targets(targets, missing_ok=False)
    check_targets(observed, settings, targets)  # every input checked before any work
    if args.report:
        from sim.calibration.calibration_report import write_report

        if not (out / "data" / "summary.json").is_file():
            raise InputError(out / "data", "", "no calibration results; run `odsim calibrate` first")
        print(f"wrote {write_report(out, observed)}")
        return 0
    summary = calibrate(config, targets, out, quick=args.quick, workers=args.workers, scheduler=args.scheduler,
                        fresh=args.fresh, progress=not args.quiet)
    print(f"calibration {summary['fingerprint']}: wrote {out / 'posterior.csv'}, {out / 'best.toml'}, "
          f"{out / 'report.md'} (seconds: {summary['seconds']})")
    if out.resolve() != CALIBRATION_DIR.resolve():
        print(f"runs keep using {CALIBRATION_DIR / 'posterior.csv'}; to use this one: odsim calibrate --adopt {out}")
    return 0


def cmd_project(args) -> int:
    from sim.running import project

    if args.list:
        for name in project.available():
            print(f"{name}: {' '.join(project.load_spec(name).description.split())}")
        return 0
    report = project.project(args.scenarios or None, out=Path(args.out), members=args.members, agents=args.agents,
                             workers=args.workers, base_seed=args.seed, plots=not args.no_plots,
                             progress=not args.quiet, scheduler=args.scheduler)
    print(f"projected {len(report.scenarios)} scenarios x {report.members} members at {report.agents} agents "
          f"({report.ran} runs now, {report.reused} reused from checkpoints); summary: {report.summary}")
    return 0


def cmd_params(args) -> int:
    """Every model parameter: meaning, default, allowed values, source, and whether calibration fits it."""
    from sim.calibration.calibration_config import CONFIG_TOML, load_config
    from sim.core.parameters import PARAMETERS

    fitted = {p.name for p in load_config(CONFIG_TOML).priors}
    print("| parameter | default | allowed | calibrated | source | meaning |")
    print("|---|---|---|---|---|---|")
    for p in PARAMETERS.values():
        cells = [p.name, f"{p.default!r}" if p.kind is str else f"{p.default}".lower(), p.describe_allowed(),
                 "yes" if p.name in fitted else "no", p.source, " ".join(p.doc.split())]
        print("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    print(f"\ncalibrated: fitted by `odsim calibrate` (priors in {os.path.relpath(CONFIG_TOML)}); a run uses the "
          "calibration posterior for these when calibration/posterior.csv exists, the defaults otherwise.")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors (an unknown option, a word where a number goes) as one line, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("odsim")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per job, each added by its own function below (in --help order)."""
    parser = _Parser(
        prog="odsim",
        description="Agent-based simulation of open-weight and closed AI model diffusion (2023-2030).",
    )
    parser.add_argument("--version", action="version", version=f"odsim {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_exploration, _add_viz, _add_calibrate, _add_project, _add_params):
        add(commands)
    return parser


def _add_run(commands) -> None:
    """`odsim run`: scenario ensembles."""
    run = commands.add_parser(
        "run", help="run scenario ensembles and write results/<scenario>/",
        description="Run each scenario file as an ensemble of seeds and write timeseries.csv and .parquet (date, "
        "metric, mean, q05, q50, q95), summary.md, manifest.json and PNG plots to OUT/<scenario>/. With no file, "
        "runs scenarios/baseline.toml.",
    )
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO.toml", help="scenario files (default: baseline)")
    run.add_argument("--seeds", type=int, help="ensemble members (default: the file's [run] seeds)")
    run.add_argument("--agents", type=int, help="agents per run (default: the file's n_agents)")
    run.add_argument("--seed", type=int, default=0, help="first seed; member k uses seed+k (default 0)")
    run.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    run.add_argument("--out", default=str(RESULTS_DIR), help="output folder (default: results)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)


def _add_exploration(commands) -> None:
    """`odsim sweep`, `sensitivity` and `discover`: the parameter-space commands."""
    sweep = commands.add_parser(
        "sweep", help="run a parameter sweep into results/sweeps/<name>/",
        description="Run every design point x replicate of a sweep spec and write results.parquet (one row per "
        "run and kept month: run_id, point, replicate, seed, month, swept parameters, observables), design.parquet, "
        "spec.toml and manifest.json. Finished runs are checkpointed; rerunning resumes where it stopped.",
    )
    _sweep_options(sweep)
    sweep.set_defaults(func=cmd_sweep)

    sens = commands.add_parser(
        "sensitivity", help="Morris or Sobol sensitivity indices from a sweep spec",
        description="Run (or resume) the spec's Morris or Saltelli design through the sweep engine, then write "
        "sensitivity/indices.csv, sensitivity.png and summary.md into the sweep folder.",
    )
    _sweep_options(sens)
    sens.set_defaults(func=cmd_sensitivity)

    disc = commands.add_parser(
        "discover", help="scenario discovery (PRIM) on a sweep's results",
        description="Find the parameter boxes in which an outcome happens (PRIM, ema-workbench) and write "
        "discover/<outcome>/ (boxes.csv, limits.csv, trajectory.csv, discover.png, summary.md) into the sweep "
        "folder.",
    )
    disc.add_argument("sweep", metavar="SWEEP", help="sweep folder, or its spec file")
    disc.add_argument("--outcome", default="or_share_cn > 0.5",
                      help="OBSERVABLE OP NUMBER, e.g. \"or_share_cn > 0.5\" (default)")
    disc.add_argument("--month", help="month of the outcome (default: the last kept month)")
    disc.add_argument("--min-density", type=float, default=0.8, help="density a box must reach (default 0.8)")
    disc.add_argument("--boxes", type=int, default=3, help="most boxes to report (default 3)")
    disc.add_argument("--out", help="the sweep's --out folder, when SWEEP is a spec file")
    disc.set_defaults(func=cmd_discover)


def _add_viz(commands) -> None:
    """`odsim viz`: the browser explorer."""
    viz = commands.add_parser(
        "viz", help="explore one model run in the browser",
        description="Start the browser explorer (Mesa SolaraViz) and print its address: pick a scenario, set the "
        "disputed parameters with sliders, step or play month by month and watch the network, marketplace "
        "shares against observed data, Hugging Face downloads and derivatives, and Chinese-origin share by "
        "region. Works offline: the page's assets are served locally.",
    )
    viz.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                     "only; 0.0.0.0 shares it on the network)")
    viz.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    viz.set_defaults(func=cmd_viz)


def _add_calibrate(commands) -> None:
    """`odsim calibrate`: fit, validate, report, adopt."""
    cal = commands.add_parser(
        "calibrate", help="fit behavioural parameters to the public figures (ABC-SMC) and validate the fit",
        description="Fit the parameters in calibration/config.toml to calibration/targets.toml (history matching "
        "with emulators, then ABC-SMC inside what is left, fresh seeds per set), then run the posterior-predictive "
        "check, the out-of-sample test, the logistic baseline, a parameter-recovery test, rolling-origin hindcasts "
        "against logistic and Bass curves, and the split of the 2030 uncertainty. Writes posterior.csv, best.toml, report.md, figures/ and data/ to results/calibration; `--adopt` then "
        "makes it the posterior `odsim run`, `project` and `viz` use. "
        "An interrupted calibration resumes where it stopped when rerun.",
    )
    cal.add_argument("--quick", action="store_true", help="tiny budget for tests (results not meaningful)")
    cal.add_argument("--report", action="store_true", help="only regenerate report.md and figures from data/")
    cal.add_argument("--config", help="settings file (default: calibration/config.toml)")
    cal.add_argument("--targets", help="targets file (default: calibration/targets.toml)")
    cal.add_argument("--out", help="output folder (default: results/calibration, with --quick "
                     "results/calibration-quick); runs use calibration/ only after --adopt")
    cal.add_argument("--adopt", metavar="FOLDER", help="make the finished calibration in FOLDER the one every run "
                     "uses: copy it into calibration/ and log the step in calibration/adoptions.log")
    cal.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    cal.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    cal.add_argument("--fresh", action="store_true", help="discard stored progress for these settings and restart")
    cal.add_argument("--quiet", action="store_true", help="no progress bars")
    cal.set_defaults(func=cmd_calibrate)


def _add_project(commands) -> None:
    """`odsim project`: paired scenario projections to 2030."""
    from sim.running.project import DEFAULT_MEMBERS, OUT_DIR, PROJECTION_AGENTS

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
    proj.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    proj.add_argument("--seed", type=int, default=0, help="first seed; member k uses seed+k (default 0)")
    proj.add_argument("--out", default=str(OUT_DIR), help=f"output folder (default {OUT_DIR})")
    proj.add_argument("--no-plots", action="store_true", help="write tables and summary only")
    proj.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    proj.add_argument("--quiet", action="store_true", help="no progress bars")
    proj.set_defaults(func=cmd_project)


def _add_params(commands) -> None:
    """`odsim params`: the parameter table."""
    params = commands.add_parser(
        "params", help="list every model parameter: meaning, default, range, source, calibrated or not",
        description="Print every model parameter (sim/core/parameters.py) as a Markdown table: its default, the values "
        "it allows, whether `odsim calibrate` fits it (a prior in calibration/config.toml), where its value comes "
        "from, and what it means.",
    )
    params.set_defaults(func=cmd_params)


def main(argv: list[str] | None = None) -> int:
    from sim.running.executor import SchedulerError, stop_on_signals
    from sim.running.store import FolderBusy

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed as one line
        return done.code
    try:
        check_options(args)
        with stop_on_signals():
            return args.func(args)
    except (SchedulerError, FolderBusy) as err:
        print(f"odsim: error: {err}", file=sys.stderr)
        return 2
    except InputError as err:
        if err.argument:  # the library names its argument; here it is an option
            err = InputError(_option(err.argument), err.key, err.message)
        print("odsim: error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP (sim.running.executor.Stopped): workers are stopped
        signum = getattr(err, "signum", signal.SIGINT)
        print(f"odsim: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
