"""Every command's bad inputs: one line naming the file or option and the key, exit code 2, nothing written.

Each case builds its inputs in a fresh folder, runs `odsim` in-process from that folder (so default output
folders would land there too), and checks the exit code, that stderr is exactly one line containing the expected
words (the file or option, the key, what is allowed), and that no file in the folder was created, changed or
removed. A few cases run through a subprocess, as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from sim.cli import main
from sim.inputs.scenario import SCENARIO_DIR

ROOT = Path(__file__).resolve().parent.parent
BASELINE = (SCENARIO_DIR / "baseline.toml").as_posix()
CONFIG = (ROOT / "calibration" / "config.toml").read_text()
TARGETS = (ROOT / "calibration" / "targets.toml").read_text()
BINARY = bytes(range(256)) * 4  # not UTF-8 from the first byte
SPEC = """name = "tiny"
scenario = "{scenario}"
design = "lhs"
samples = 4
replicates = 1
months = ["2024-06"]
observables = ["or_share_cn", "or_share_open"]
[fixed]
n_agents = 100
end = "2024-06"
[parameters]
price_sensitivity = { low = 0.1, high = 2.0 }
peer_weight = { low = 0.0, high = 4.0 }
"""
SHOCK = 'name = "x"\n[[shock]]\n'


class Folder:
    """The case's folder: writes inputs and names the output folder."""

    def __init__(self, path: Path):
        self.path = path
        self.out = str(path / "out")

    def file(self, name: str, content: str | bytes) -> str:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(target)

    def scenario(self, text: str | bytes) -> str:
        return self.file("bad.toml", text)

    def spec(self, text: str | bytes | None = None, old: str = "", new: str = "") -> str:
        text = SPEC.replace("{scenario}", BASELINE) if text is None else text
        return self.file("spec.toml", text.replace(old, new) if old else text)

    def config(self, old: str, new: str) -> str:
        assert old in CONFIG
        return self.file("config.toml", CONFIG.replace(old, new, 1))

    def targets(self, old: str, new: str) -> str:
        assert old in TARGETS
        return self.file("targets.toml", TARGETS.replace(old, new, 1))

    def a_file(self) -> str:
        return self.file("a_file", "not a folder\n")


@dataclass
class Case:
    id: str
    argv: Callable[[Folder], list[str]]  # the command line, given the case's folder
    words: tuple[str, ...]  # each must appear in the one line on stderr
    setup: Callable[[Folder], object] | None = None  # files in the way of a default output folder


def run_file(text, *words):
    """`odsim run` on one bad scenario file (the good baseline first: nothing may run)."""
    return lambda f: ["run", BASELINE, f.scenario(text), "--out", f.out], ("bad.toml", *words)


def case(id, argv_words):
    argv, words = argv_words
    return Case(id, argv, words)


CASES = [
    # --- odsim run: scenario files -------------------------------------------------------------------------------
    case("run binary file", run_file(BINARY, "file", "not a text file")),
    case("run empty file", run_file("", "file", "empty")),
    case("run comment-only file", run_file("# nothing here\n", "file", "empty")),
    case("run not TOML", run_file('name = "x\n', "toml", "not valid TOML")),
    case("run unknown top-level key", run_file('name = "x"\ncolour = "red"\n', "colour", "unknown key")),
    case("run name not text", run_file("name = 3\n", "name", "required")),
    case("run name with spaces", run_file('name = "my run"\n', "name", "letters, digits")),
    case("run parameter of wrong type", run_file('name = "x"\n[parameters]\nprice_sensitivity = "high"\n',
                                                 "parameters.price_sensitivity", "[0.05, 4.0]")),
    case("run parameter out of range", run_file('name = "x"\n[parameters]\nprice_sensitivity = -3\n',
                                                "parameters.price_sensitivity", "[0.05, 4.0]")),
    case("run unknown parameter", run_file('name = "x"\n[parameters]\nprice_sensitivty = 1.0\n',
                                           "parameters.price_sensitivty", "unknown parameter")),
    case("run parameters not a table", run_file('name = "x"\nparameters = 3\n', "parameters", "table")),
    case("run whole-number parameter", run_file('name = "x"\n[parameters]\nn_agents = 100.5\n',
                                                "parameters.n_agents", "whole number")),
    case("run flag parameter", run_file('name = "x"\n[parameters]\nchoice = "yes"\n', "parameters.choice",
                                        "true or false")),
    case("run unknown network", run_file('name = "x"\n[parameters]\nnetwork = "ring"\n', "parameters.network",
                                         "'clustered' or 'complete'")),
    case("run malformed start month", run_file('name = "x"\n[parameters]\nstart = "2023-1"\n',
                                               "parameters.start", "YYYY-MM")),
    case("run end before start", run_file('name = "x"\n[parameters]\nend = "2022-12"\n', "parameters",
                                          "before start")),
    case("run zero seeds", run_file('name = "x"\n[run]\nseeds = 0\n', "run.seeds", "whole number")),
    case("run seeds as text", run_file('name = "x"\n[run]\nseeds = "ten"\n', "run.seeds", "whole number")),
    case("run unknown run key", run_file('name = "x"\n[run]\nseed = 3\n', "run.seed", "allowed: seeds")),
    case("run includes as text", run_file('name = "x"\nincludes = "baseline.toml"\n', "includes", "list")),
    case("run missing include", run_file('name = "x"\nincludes = ["nowhere.toml"]\n', "nowhere.toml", "no such")),
    case("run description not text", run_file('name = "x"\ndescription = 3\n', "description", "text")),
    case("run sources as text", run_file('name = "x"\nsources = "a report"\n', "sources", "list")),
    case("run shock not a table", run_file('name = "x"\nshock = "soon"\n', "shock", "[[shock]]")),
    case("run shock month 13", run_file(SHOCK + 'date = "2026-13"\nset = { cn_lag_months = 9 }\n',
                                        "shock[1].date", "YYYY-MM")),
    case("run shock date with junk", run_file(SHOCK + 'date = "2026-01abc"\nset = { cn_lag_months = 9 }\n',
                                              "shock[1].date", "YYYY-MM")),
    case("run shock date as a TOML date", run_file(SHOCK + 'date = 2026-01-01\nset = { cn_lag_months = 9 }\n',
                                                   "shock[1].date", "YYYY-MM")),
    case("run shock after the simulated months", run_file(SHOCK + 'date = "2036-01"\nset = { cn_lag_months = 9 }\n',
                                                          "shock[1].date", "2023-01 to 2030-12")),
    case("run shock before the simulated months", run_file(
        SHOCK + 'date = "2020-01"\nset = { cn_lag_months = 9 }\n', "shock[1].date", "2023-01 to 2030-12")),
    case("run shock after a shortened end", run_file(
        'name = "x"\n[parameters]\nend = "2025-12"\n[[shock]]\ndate = "2026-06"\nset = { cn_lag_months = 9 }\n',
        "shock[1].date", "2023-01 to 2025-12")),
    case("run shock until before date", run_file(
        SHOCK + 'date = "2026-06"\nuntil = "2026-01"\nset = { cn_lag_months = 9 }\n', "shock[1].until", "before")),
    case("run shock without date", run_file(SHOCK + 'set = { cn_lag_months = 9 }\n', "shock[1].date", "missing")),
    case("run shock unknown key", run_file(SHOCK + 'date = "2026-01"\ncolour = "red"\n', "shock[1].colour",
                                           "unknown key")),
    case("run family names as text", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { names = "Qwen" }\nprice_factor = 0.5\n',
        "shock[1].families.names", "list")),
    case("run unknown family", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { names = ["Bard"] }\nprice_factor = 0.5\n',
        "shock[1].families.names", "unknown family 'Bard'")),
    case("run unknown origin", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { origin = "JP" }\nprice_factor = 0.5\n',
        "shock[1].families.origin", "allowed")),
    case("run unknown ban region", run_file(
        SHOCK + 'date = "2026-01"\nban = { origin = "CN", regions = ["mars"] }\n', "shock[1].ban.regions",
        "unknown value 'mars'")),
    case("run price factor as text", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { origin = "CN" }\nprice_factor = "half"\n', "shock[1].price_factor",
        "number")),
    case("run price factor zero", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { origin = "CN" }\nprice_factor = 0\n', "shock[1].price_factor",
        "[0.01, 100.0]")),
    case("run shock changes a structural parameter", run_file(
        SHOCK + 'date = "2026-01"\nset = { n_agents = 10 }\n', "shock[1].set.n_agents", "allowed")),
    case("run unknown licence", run_file(
        SHOCK + 'date = "2026-01"\nfamilies = { origin = "CN" }\nlicence = "copyleft"\n', "shock[1].licence",
        "allowed")),
    # --- odsim run: options ---------------------------------------------------------------------------------------
    Case("run negative workers", lambda f: ["run", "--workers", "-2", "--out", f.out], ("--workers", "at least 1")),
    Case("run zero workers", lambda f: ["run", "--workers", "0", "--out", f.out], ("--workers", "at least 1")),
    Case("run workers not a number", lambda f: ["run", "--workers", "abc"], ("--workers", "invalid int")),
    Case("run negative seed", lambda f: ["run", "--seed", "-1", "--out", f.out], ("--seed", "at least 0")),
    Case("run zero seeds option", lambda f: ["run", "--seeds", "0", "--out", f.out], ("--seeds", "[1, 10000]")),
    Case("run too many seeds", lambda f: ["run", "--seeds", "20000", "--out", f.out], ("--seeds", "[1, 10000]")),
    Case("run scenario is a folder", lambda f: ["run", str(f.path), "--out", f.out], ("file", "a folder, not a")),
    Case("run too few agents", lambda f: ["run", "--agents", "5", "--out", f.out], ("--agents", "n_agents")),
    Case("run out is a file", lambda f: ["run", "--out", f.a_file()], ("--out", "a_file", "is a file")),
    Case("run out under a file", lambda f: ["run", "--out", f.a_file() + "/results"],
         ("--out", "a_file", "cannot be created")),
    Case("run default out is a file", lambda f: ["run", "--seeds", "1"], ("--out", "results", "is a file"),
         setup=lambda f: f.file("results", "x")),
    Case("run unknown option", lambda f: ["run", "--colour", "red"], ("unrecognized arguments", "--colour")),
    # --- odsim project ---------------------------------------------------------------------------------------------
    Case("project binary scenario", lambda f: ["project", f.scenario(BINARY), "--out", f.out],
         ("bad.toml", "file", "not a text file")),
    Case("project unknown scenario", lambda f: ["project", "no_such_scenario", "--out", f.out],
         ("no_such_scenario", "no such scenario")),
    Case("project empty composition", lambda f: ["project", "security_bans+", "--out", f.out],
         ("security_bans+", "empty name")),
    Case("project scenario twice", lambda f: ["project", "security_bans", "security_bans", "--out", f.out],
         ("security_bans", "given twice")),
    Case("project bad shock", lambda f: ["project", f.scenario(SHOCK + 'date = "2026-01"\nscale = { trust_cn_europe '
                                                               '= "high" }\n'), "--out", f.out],
         ("bad.toml", "shock[1].scale.trust_cn_europe", "number")),
    Case("project zero members", lambda f: ["project", "--members", "0", "--out", f.out], ("--members", "at least 1")),
    Case("project negative members", lambda f: ["project", "--members", "-3", "--out", f.out], ("--members",)),
    Case("project too few agents", lambda f: ["project", "--agents", "10", "--out", f.out], ("--agents", "[50,")),
    Case("project zero workers", lambda f: ["project", "--workers", "0", "--out", f.out], ("--workers",)),
    Case("project negative seed", lambda f: ["project", "--seed", "-5", "--out", f.out], ("--seed", "at least 0")),
    Case("project out is a file", lambda f: ["project", "--out", f.a_file()], ("--out", "is a file")),
    # --- odsim sweep -----------------------------------------------------------------------------------------------
    Case("sweep binary spec", lambda f: ["sweep", f.spec(BINARY), "--out", f.out], ("spec.toml", "not a text file")),
    Case("sweep empty spec", lambda f: ["sweep", f.spec(""), "--out", f.out], ("spec.toml", "file", "empty")),
    Case("sweep missing spec", lambda f: ["sweep", str(f.path / "none.toml"), "--out", f.out],
         ("none.toml", "no such sweep spec")),
    Case("sweep unknown design", lambda f: ["sweep", f.spec(old='"lhs"', new='"montecarlo"'), "--out", f.out],
         ("spec.toml", "design", "allowed: grid")),
    Case("sweep samples as text", lambda f: ["sweep", f.spec(old="samples = 4", new='samples = "many"'), "--out",
                                             f.out], ("spec.toml", "samples", "whole number")),
    Case("sweep zero replicates", lambda f: ["sweep", f.spec(old="replicates = 1", new="replicates = 0"), "--out",
                                             f.out], ("spec.toml", "replicates", "at least 1")),
    Case("sweep month outside the runs", lambda f: ["sweep", f.spec(old='["2024-06"]', new='["2031-01"]'), "--out",
                                                    f.out], ("spec.toml", "months", "not a simulated month")),
    Case("sweep observables as text", lambda f: ["sweep", f.spec(old='["or_share_cn", "or_share_open"]',
                                                                 new='"or_share_cn"'), "--out", f.out],
         ("spec.toml", "observables", "list")),
    Case("sweep unknown parameter", lambda f: ["sweep", f.spec(old="peer_weight =", new="warp_speed ="), "--out",
                                               f.out], ("spec.toml", "parameters.warp_speed", "unknown parameter")),
    Case("sweep flag as text", lambda f: ["sweep", f.spec(old="replicates = 1", new='replicates = 1\nposterior = '
                                                          '"no"'), "--out", f.out],
         ("spec.toml", "posterior", "true or false")),
    Case("sweep bad scenario file", lambda f: ["sweep", f.spec(old=BASELINE, new=f.scenario(
        SHOCK + 'date = "2026-01abc"\nset = { cn_lag_months = 9 }\n')), "--out", f.out],
        ("bad.toml", "shock[1].date", "YYYY-MM")),
    Case("sweep zero workers", lambda f: ["sweep", f.spec(), "--workers", "0", "--out", f.out], ("--workers",)),
    Case("sweep workers and scheduler", lambda f: ["sweep", f.spec(), "--workers", "2", "--scheduler",
                                                   "tcp://127.0.0.1:1", "--out", f.out], ("--workers", "not both")),
    Case("sweep zero checkpoint interval", lambda f: ["sweep", f.spec(), "--checkpoint-every", "0", "--out", f.out],
         ("--checkpoint-every", "positive")),
    Case("sweep negative connect timeout", lambda f: ["sweep", f.spec(), "--connect-timeout", "-1", "--out", f.out],
         ("--connect-timeout", "positive")),
    Case("sweep out is a file", lambda f: ["sweep", f.spec(), "--out", f.a_file()], ("--out", "is a file")),
    Case("sweep default folder is a file", lambda f: ["sweep", f.spec()], ("--out", "sweeps/tiny", "is a file"),
         setup=lambda f: f.file("results/sweeps/tiny", "x")),
    # --- odsim sensitivity -----------------------------------------------------------------------------------------
    Case("sensitivity binary spec", lambda f: ["sensitivity", f.spec(BINARY), "--out", f.out],
         ("spec.toml", "not a text file")),
    Case("sensitivity wrong design", lambda f: ["sensitivity", f.spec(), "--out", f.out],
         ("spec.toml", "design", "morris")),
    Case("sensitivity unknown output", lambda f: ["sensitivity", f.spec(old="[fixed]", new='[sensitivity]\noutputs = '
                                                                        '["or_share_cn@2029-01"]\n[fixed]'),
                                                  "--out", f.out], ("spec.toml", "sensitivity.outputs", "kept month")),
    Case("sensitivity out is a file", lambda f: ["sensitivity", f.spec(old='"lhs"', new='"morris"'), "--out",
                                                 f.a_file()], ("--out", "is a file")),
    # --- odsim discover --------------------------------------------------------------------------------------------
    Case("discover binary spec", lambda f: ["discover", f.spec(BINARY)], ("spec.toml", "not a text file")),
    Case("discover missing folder", lambda f: ["discover", str(f.path / "nowhere")], ("nowhere", "no such sweep")),
    Case("discover zero boxes", lambda f: ["discover", f.out, "--boxes", "0"], ("--boxes", "at least 1")),
    Case("discover zero density", lambda f: ["discover", f.out, "--min-density", "0"], ("--min-density", "(0.0, 1.0]")),
    Case("discover bad month", lambda f: ["discover", f.out, "--month", "2026-13"], ("--month", "YYYY-MM")),
    # --- odsim calibrate -------------------------------------------------------------------------------------------
    Case("calibrate binary config", lambda f: ["calibrate", "--quick", "--config", f.file("config.toml", BINARY),
                                               "--out", f.out], ("config.toml", "not a text file")),
    Case("calibrate empty config", lambda f: ["calibrate", "--quick", "--config", f.file("config.toml", ""),
                                              "--out", f.out], ("config.toml", "empty", "run, fit")),
    Case("calibrate unknown section", lambda f: ["calibrate", "--quick", "--config", f.config("[fit]", "[fitting]"),
                                                 "--out", f.out], ("config.toml", "fitting", "unknown section")),
    Case("calibrate malformed month", lambda f: ["calibrate", "--quick", "--config", f.config(
        'end = "2026-01"', 'end = "2026-1"'), "--out", f.out], ("config.toml", "run.end", "YYYY-MM")),
    Case("calibrate population as text", lambda f: ["calibrate", "--config", f.config(
        "population = 200", 'population = "many"'), "--out", f.out], ("config.toml", "fit.population", "whole")),
    Case("calibrate bad baseline month", lambda f: ["calibrate", "--quick", "--config", f.config(
        't0 = ["2023-01", "2028-12"]', 't0 = ["2023-01", "soon"]'), "--out", f.out],
        ("config.toml", "baseline.t0", "YYYY-MM")),
    Case("calibrate prior as a number", lambda f: ["calibrate", "--quick", "--config", f.config(
        "[priors.peer_weight]\nlow = 0.0\nhigh = 6.0", "[priors]\npeer_weight = 3.0"), "--out", f.out],
        ("config.toml", "priors.peer_weight", "table")),
    Case("calibrate binary targets", lambda f: ["calibrate", "--quick", "--targets", f.file("targets.toml", BINARY),
                                                "--out", f.out], ("targets.toml", "not a text file")),
    Case("calibrate empty targets", lambda f: ["calibrate", "--quick", "--targets", f.file("targets.toml", ""),
                                               "--out", f.out], ("targets.toml", "empty", "[[target]]")),
    Case("calibrate target value as text", lambda f: ["calibrate", "--quick", "--targets", f.targets(
        "value = 0.012", 'value = "1.2%"'), "--out", f.out], ("targets.toml", "(OR1).value", "number")),
    Case("calibrate target date", lambda f: ["calibrate", "--quick", "--targets", f.targets(
        'start = "2024-11"', 'start = "Nov 2024"'), "--out", f.out], ("targets.toml", "(OR1).start", "YYYY-MM")),
    Case("calibrate target list as text", lambda f: ["calibrate", "--quick", "--targets", f.targets(
        'statistic = "mean"', 'statistic = "ratio_mean"\ndenominator = "or_share_us"'), "--out", f.out],
        ("targets.toml", "(OR1).denominator", "list")),
    Case("calibrate zero workers", lambda f: ["calibrate", "--quick", "--workers", "0", "--out", f.out],
         ("--workers", "at least 1")),
    Case("calibrate out is a file", lambda f: ["calibrate", "--quick", "--out", f.a_file()], ("--out", "is a file")),
    # --- odsim viz -------------------------------------------------------------------------------------------------
    Case("viz port zero", lambda f: ["viz", "--port", "0"], ("--port", "[1, 65535]")),
    Case("viz port too high", lambda f: ["viz", "--port", "70000"], ("--port", "[1, 65535]")),
    Case("viz port not a number", lambda f: ["viz", "--port", "http"], ("--port", "invalid int")),
]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and folder under `folder` with its content: what "nothing written" is checked against."""
    return {str(p.relative_to(folder)): (p.is_dir(), b"" if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def test_the_table_covers_every_command_and_enough_cases():
    commands = {c.id.split()[0] for c in CASES}
    assert commands == {"run", "project", "sweep", "sensitivity", "discover", "calibrate", "viz"}
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default output folders (results/...) would be written here
    folder = Folder(tmp_path)
    if case.setup:
        case.setup(folder)
    argv = case.argv(folder)
    before = snapshot(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("odsim"), captured.err
    missing = [w for w in case.words if w not in lines[0]]
    assert not missing, f"{missing} not in: {lines[0]}"
    assert "wrote" not in captured.out
    assert snapshot(tmp_path) == before


@pytest.mark.slow  # a Python start-up each (about 2 s of CPU, importing the model)
@pytest.mark.parametrize("args, words", [
    (["run", "--workers", "-2"], ["--workers"]),
    (["project", "--seed", "-1"], ["--seed"]),
    (["sweep", str(ROOT / "sim" / "core" / "data" / "model-catalogue.csv")], ["model-catalogue.csv", "toml"]),
])
def test_bad_input_through_the_installed_command_line(tmp_path, args, words):
    """As a user runs it: a separate process, one line on stderr, exit 2, no traceback, nothing written."""
    result = subprocess.run([sys.executable, "-m", "sim.cli", *args, "--out", str(tmp_path / "out")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), result.stderr
    assert not any(tmp_path.iterdir())


def test_the_library_names_its_arguments_and_the_command_line_its_options(tmp_path, capsys):
    """project() and discover() refuse bad arguments by their own names; only the CLI words them as options."""
    from sim.core.checks import InputError
    from sim.exploration.discover import discover
    from sim.running.project import project

    with pytest.raises(InputError) as err:
        project(["baseline"], out=tmp_path / "out", members=0)
    assert err.value.argument == "members" and str(err.value).startswith("members: ") and "--" not in str(err.value)
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "manifest.json").write_text('{"observables": ["or_share_cn"], "months": ["2030-12"]}')
    with pytest.raises(InputError) as err:
        discover(tmp_path / "sweep", "or_share_cn >> 0.5")
    assert err.value.argument == "outcome" and "--" not in str(err.value)
    assert main(["discover", str(tmp_path / "sweep"), "--outcome", "or_share_cn >> 0.5"]) == 2
    assert capsys.readouterr().err.startswith("odsim: error: --outcome: 'or_share_cn >> 0.5': write OBSERVABLE")
    assert not (tmp_path / "out").exists()
