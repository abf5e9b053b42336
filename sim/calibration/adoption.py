"""Adopting a calibration: the one step that changes the posterior every run, projection and the browser use.

`odsim calibrate` writes to a results folder (results/calibration, or results/calibration-quick for a smoke
run), never to calibration/. `odsim calibrate --adopt FOLDER` checks that the folder holds a complete, full-budget
calibration, copies its posterior, best set, report, figures and data into calibration/, and appends a line to
calibration/adoptions.log saying what was adopted, from where, when and on which commit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from sim.core import checks as check
from sim.running.store import atomic_write, git_commit, replace_folder

ADOPTED_FILES = ("posterior.csv", "best.toml", "report.md")
ADOPTED_FOLDERS = ("data", "figures")
LOG_NAME = "adoptions.log"


def check_adoptable(source: Path) -> dict:
    """The calibration summary of `source`, or an InputError naming what is missing or why it cannot be used."""
    missing = [name for name in (*ADOPTED_FILES, "data/summary.json") if not (source / name).is_file()]
    if missing:
        check.fail(source, "", f"not a finished calibration (missing {', '.join(missing)}); run `odsim calibrate "
                   "--out FOLDER` first")
    summary = json.loads((source / "data" / "summary.json").read_text())
    if summary.get("quick"):
        check.fail(source, "", "a --quick calibration (smoke budget) cannot be adopted")
    return summary


def adopt(source: Path, target: Path) -> str:
    """Copy the calibration in `source` into `target` (each file replaced whole) and log it; returns the log line."""
    source, target = Path(source).resolve(), Path(target).resolve()
    if source == target:
        check.fail(source, "", "already the adopted calibration folder")
    summary = check_adoptable(source)
    target.mkdir(parents=True, exist_ok=True)
    for name in ADOPTED_FILES:
        atomic_write(target / name, lambda tmp, n=name: shutil.copyfile(source / n, tmp))
    for name in ADOPTED_FOLDERS:
        if (source / name).is_dir():
            replace_folder(target / name, lambda tmp, n=name: shutil.copytree(source / n, tmp, dirs_exist_ok=True))
    digest = hashlib.sha256((target / "posterior.csv").read_bytes()).hexdigest()
    line = (f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\tadopted {source}\t"
            f"fingerprint {summary.get('fingerprint', '?')}\tposterior sha256 {digest}\tcommit {git_commit()}")
    with open(target / LOG_NAME, "a") as log:
        log.write(line + "\n")
    return line
