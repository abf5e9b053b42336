"""Writing results safely: atomic files and folders, folder locks, the provenance record and the model fingerprint.

- A file is written under a temporary name beside it and renamed into place (`atomic_write`), so a file under
  its final name is always complete, whatever interrupts the writer.
- A results folder is built beside its destination and exchanged with it in one step (`replace_folder`; Linux
  renameat2 RENAME_EXCHANGE), so readers see the old folder or the new one, never a mix; files in it that
  odsim did not write are carried over, never deleted.
- Temporary files and folders carry the writer's process id; those of processes no longer running are removed by
  the next writer (`remove_stale`).
- `FolderLock` refuses a second writer of the same results (fcntl; the kernel releases it when the holder dies).
- `model_fingerprint` hashes what results depend on (the model's code and data), not the modules that only run,
  store or present them, so editing a plot or the browser app does not invalidate checkpoints.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows, where two writers must simply not share a folder
    fcntl = None

from sim.running.executor import pid_alive

# The model fingerprint's rule: the model's outputs depend on the model core, sim/core/ (its code and its data/),
# and on nothing else under sim/: the other subpackages read inputs (hashed by what uses them: a projection's
# checkpoints by the member's parameters, a calibration's cache by its config and targets), run jobs, store or
# present results. The core imports nothing else from sim/ (tests/test_layout.py), so the rule holds by directory.
# (The calibration's own procedure is versioned by calibrate.METHOD_VERSION.)
CORE_DIR = Path(__file__).resolve().parents[1] / "core"
MODEL_SUFFIXES = (".py", ".csv", ".toml", ".json")
PACKAGES = ("odsim", "mesa", "numpy", "scipy", "pandas", "networkx", "matplotlib", "pyarrow", "dask",
            "distributed", "SALib")
WRITTEN = ".odsim-written"  # in a results folder: the entries odsim wrote there (the rest is the user's)
RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


class FolderBusy(RuntimeError):
    """Another process is writing the same results; the message names the folder."""


# --- provenance and fingerprint ------------------------------------------------------------------------------------
@cache
def model_fingerprint() -> str:
    """SHA-256 of the model core's code and data: every file under sim/core/ (the rule above CORE_DIR)."""
    digest = hashlib.sha256()
    files = sorted(p for p in CORE_DIR.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES
                   and "__pycache__" not in p.parts)
    for path in files:
        digest.update(path.relative_to(CORE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=CORE_DIR)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def software_provenance() -> dict[str, object]:
    """What every manifest records about the software that produced it."""
    return {"code_fingerprint": model_fingerprint(), "versions": versions(), "git_commit": git_commit()}


# --- atomic files ------------------------------------------------------------------------------------------------------
def temporary(path: Path) -> Path:
    """The temporary name of `path` for this process: hidden, with the process id (so leftovers can be cleaned)
    and the same suffix (writers such as matplotlib choose the format from it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """write(tmp), flush it to disk, then rename it onto `path`: a file under its final name is always complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


_STALE = re.compile(r"^\.(?P<name>.+)\.(tmp|old)-(?P<pid>\d+)(\.[^.]*)?$")


def remove_stale(folder: Path) -> list[Path]:
    """Remove temporary files and folders in `folder` left by writers that no longer run; returns them."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _STALE.match(entry.name)
        if match and int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


# --- atomic folders ----------------------------------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the system cannot (then the caller renames in two steps)."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _written(folder: Path) -> set[str]:
    try:
        return set(json.loads((folder / WRITTEN).read_text()))
    except (OSError, ValueError):
        return set()


def replace_folder(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp_folder), then put it in place of `folder` in one step. Entries of the old folder that odsim
    did not write (a user's notes, say) are kept; files of the old results that the new ones lack are dropped."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(folder.parent)
    tmp = temporary(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    try:
        write(tmp)
        ours = sorted(p.name for p in tmp.iterdir())
        (tmp / WRITTEN).write_text(json.dumps(ours) + "\n")
        if folder.is_dir():
            previous = _written(folder) | {WRITTEN}
            for entry in folder.iterdir():  # the user's files stay visible through the swap
                if entry.name not in previous and entry.name not in ours and entry.is_file() and not entry.is_symlink():
                    os.link(entry, tmp / entry.name)
            if _exchange(tmp, folder):
                os.rename(tmp, old)
            else:
                os.rename(folder, old)
                os.rename(tmp, folder)
            for entry in old.iterdir():  # anything of the user's not carried over yet (folders, late additions)
                if entry.name not in previous and not (folder / entry.name).exists():
                    os.rename(entry, folder / entry.name)
        else:
            os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder


class FolderLock:
    """Exclusive lock on a results folder, held in `lock_file` (outside the folder when the folder is swapped).
    A second writer is refused at once with FolderBusy; the kernel releases the lock if the holder dies."""

    def __init__(self, lock_file: str | Path, what: str):
        self.path, self.what = Path(lock_file), what

    def __enter__(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.fh.close()
                raise FolderBusy(f"{self.what}: another odsim process is writing there; wait for it to finish "
                                 "or give another --out") from None
        return self

    def __exit__(self, *exc) -> None:
        if fcntl is not None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
