"""Interrupting the long commands: no odsim process survives its command, and a rerun finishes with the results of
an uninterrupted run. Also: `odsim run` into one folder from many processes at once, and the folder rules."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import calibration_files, same_files, same_untimed_tables, small_calibration, write_spec

ROOT = Path(__file__).resolve().parent.parent
GONE_WITHIN = 10.0  # seconds a stopped command's processes may take to go (the watchdogs poll every 0.5 s)


def session_processes(sid: int) -> list[int]:
    """Live processes of session `sid` (each command starts its own; its workers, forkserver and resource
    tracker stay in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != b"Z":
            found.append(int(entry.name))
    return found


def start(args: list[str], log: Path) -> subprocess.Popen:
    """The command in a session of its own, output to a file (a pipe held open by a surviving worker would
    block the test instead of failing it)."""
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "sim.cli", *args], cwd=ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def odsim(args: list[str], log: Path) -> None:
    proc = start(args, log)
    assert proc.wait(timeout=900) == 0, log.read_text()[-2000:]


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition(proc):
        assert proc.poll() is None, f"finished before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def interrupt(args: list[str], ready, signum: int, tmp_path: Path, seed: int) -> None:
    """Start the command, wait until `ready(proc)`, send `signum` at a random moment soon after, then require every
    process of its session to be gone within GONE_WITHIN seconds."""
    log = tmp_path / f"interrupted-{signum}.log"
    proc = start(args, log)
    try:
        wait_for(ready, proc, "checkpoint")
        time.sleep(random.Random(seed).uniform(0.0, 0.5))
        assert proc.poll() is None, "the command finished before the signal: nothing was interrupted"
        assert len(session_processes(proc.pid)) >= 3, "no worker processes to leave behind"
        os.kill(proc.pid, signum)
        proc.wait(timeout=60)
        deadline = time.monotonic() + GONE_WITHIN
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session_processes(proc.pid) == [], f"processes outlived the command: {log.read_text()[-2000:]}"
    finally:
        for pid in session_processes(proc.pid):  # only if the assertion above failed
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGKILL, id="SIGKILL")]


def workers_started(proc: subprocess.Popen) -> bool:
    """The command, its resource tracker, its forkserver and a worker are up."""
    return len(session_processes(proc.pid)) >= 4


def files_appear(pattern: str):
    """A readiness test for `stop_and_rerun`: a checkpoint file matching `pattern` exists in the output folder."""
    return lambda folder: lambda proc: any(folder.glob(pattern))


def stop_and_rerun(args: list[str], ready, signum: int, tmp_path: Path, seed: int) -> tuple[Path, Path]:
    """An uninterrupted reference run, then the same command interrupted (see `interrupt`) and rerun to the end;
    returns the two output folders (rerun, reference). `args` ends with --out."""
    out, reference = tmp_path / "out", tmp_path / "reference"
    odsim(args + [str(reference)], tmp_path / "reference.log")
    interrupt(args + [str(out)], ready(out), signum, tmp_path, seed)
    odsim(args + [str(out)], tmp_path / "rerun.log")
    return out, reference


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_run_stopped_leaves_no_process_and_reruns_identically(tmp_path, signum):
    probe = subprocess.Popen(["true"])
    probe.wait()  # its pid is surely no longer running: a temporary folder as a killed run leaves it
    stale = tmp_path / "out" / f".baseline.tmp-{probe.pid}"
    stale.mkdir(parents=True)
    (stale / "timeseries.csv").write_text("half-written")
    args = ["run", "--seeds", "6", "--agents", "400", "--workers", "2", "--out"]
    out, reference = stop_and_rerun(args, lambda out: workers_started, signum, tmp_path, seed=1)
    same_files(out, reference, ["baseline/timeseries.csv"])
    assert not stale.exists() and not list(out.glob(".baseline.tmp-*"))  # interrupted runs' folders cleaned


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_project_stopped_leaves_no_process_and_resumes_identically(tmp_path, signum):
    args = ["project", "baseline", "--members", "8", "--agents", "300", "--workers", "2", "--no-plots", "--out"]
    out, reference = stop_and_rerun(args, files_appear("_members/baseline/m*.npz"), signum, tmp_path, seed=2)
    same_files(out, reference, ["baseline/quantiles.csv", "baseline/regimes.csv"])


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_sweep_stopped_leaves_no_process_and_resumes_identically(tmp_path, signum):
    spec = write_spec(tmp_path, samples=12, replicates=1, agents=300, end="2025-06", months='["2025-06"]')
    args = ["sweep", str(spec), "--workers", "2", "--checkpoint-every", "0.1", "--quiet", "--out"]
    out, reference = stop_and_rerun(args, files_appear("parts/part-*.parquet"), signum, tmp_path, seed=3)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"),
                                  pd.read_parquet(reference / "results.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_calibrate_stopped_leaves_no_process_and_resumes_identically(tmp_path, signum):
    args = ["calibrate", "--quick", "--config", str(small_calibration(tmp_path)), "--workers", "2", "--out"]
    out, reference = stop_and_rerun(args, files_appear(".cache/*/fit/generation-000.npz"), signum, tmp_path,
                                    seed=4)
    same_files(out, reference, calibration_files(reference))
    same_untimed_tables(out, reference)
