"""sim.running.store: folders replaced in one step without losing a user's files, stale temporaries removed, the lock, the
fingerprint rule; and `odsim run`'s refusals (a busy folder, two scenarios with one name)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from sim.running import store
from sim.running.store import FolderBusy, FolderLock, model_fingerprint, remove_stale, replace_folder

ROOT = Path(__file__).resolve().parent.parent


def _write_pair(value: str):
    def write(folder: Path) -> None:
        (folder / "a.txt").write_text(value)
        (folder / "b.txt").write_text(value)
    return write


def _replace_many(args) -> int:
    folder, writer = args
    for k in range(25):
        replace_folder(Path(folder), _write_pair(f"{writer}-{k}"))
    return writer


@pytest.mark.slow
def test_concurrent_replacements_all_succeed_and_the_folder_is_always_whole(tmp_path):
    """600 writes from eight processes into one folder (the old rename dance failed 44 of 600): none fails, and a
    reader never finds the folder missing. (A reader that opened the old folder just before a swap may see it
    emptied, as with any replace-by-rename: paths always lead to a complete folder.)"""
    folder = tmp_path / "results"
    replace_folder(folder, _write_pair("first"))
    context = multiprocessing.get_context("forkserver")
    with context.Pool(8) as pool:
        pending = pool.map_async(_replace_many, [(str(folder), w) for w in range(24)])
        reads = 0
        while not pending.ready():
            assert folder.is_dir()  # swapped in one step: never absent, as between two renames
            reads += 1
        assert sorted(pending.get()) == list(range(24))  # no writer raised
    assert reads > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no temporary folder left
    assert sorted(p.name for p in folder.iterdir()) == [store.WRITTEN, "a.txt", "b.txt"]


def test_files_the_user_put_in_the_folder_are_kept(tmp_path):
    folder = tmp_path / "baseline"
    replace_folder(folder, lambda f: [(f / n).write_text("old") for n in ("table.csv", "old_plot.png")])
    (folder / "notes.md").write_text("mine")
    (folder / "mine").mkdir()
    (folder / "mine" / "x.txt").write_text("also mine")
    replace_folder(folder, lambda f: (f / "table.csv").write_text("new"))
    assert (folder / "table.csv").read_text() == "new"
    assert (folder / "notes.md").read_text() == "mine" and (folder / "mine" / "x.txt").read_text() == "also mine"
    assert not (folder / "old_plot.png").exists()  # odsim wrote it, the new results do not have it
    assert json.loads((folder / store.WRITTEN).read_text()) == ["table.csv"]


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path):
    folder = tmp_path / "baseline"
    replace_folder(folder, _write_pair("good"))

    def fail(f: Path) -> None:
        (f / "a.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_folder(folder, fail)
    assert (folder / "a.txt").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline"]


def test_only_temporaries_of_finished_processes_are_removed(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [tmp_path / f".baseline.tmp-{gone.pid}", tmp_path / f".m00001.npz.tmp-{gone.pid}.npz"]
        stale[0].mkdir()
        stale[1].write_text("half")
        running = tmp_path / f".baseline.tmp-{alive.pid}"
        running.mkdir()
        user = tmp_path / ".hidden-by-user"
        user.write_text("keep")
        assert sorted(remove_stale(tmp_path)) == sorted(stale)
        assert running.exists() and user.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_second_writer_is_refused(tmp_path):
    with FolderLock(tmp_path / ".x.lock", "results/x"):
        with pytest.raises(FolderBusy, match="results/x: another odsim process is writing there"):
            with FolderLock(tmp_path / ".x.lock", "results/x"):
                pass
    with FolderLock(tmp_path / ".x.lock", "results/x"):  # free again
        pass


def test_fingerprint_covers_the_model_core_and_nothing_else(tmp_path, monkeypatch):
    sim = tmp_path / "sim"
    core = sim / "core"
    (core / "data").mkdir(parents=True)
    (sim / "figures").mkdir()
    outside = [sim / "app.py", sim / "statistics.py", sim / "figures" / "plots.py"]
    for path in [core / "model.py", *outside]:
        path.write_text("x = 1\n")
    (core / "data" / "families.csv").write_text("a,b\n")
    monkeypatch.setattr(store, "CORE_DIR", core)

    def fingerprint():
        model_fingerprint.cache_clear()
        return model_fingerprint()

    first = fingerprint()
    for path in outside:
        path.write_text("x = 2\n")
        assert fingerprint() == first, path
    for path in (core / "model.py", core / "data" / "families.csv"):
        path.write_text(path.read_text() + "# changed\n")
        assert fingerprint() != first, path
        first = fingerprint()
    (core / "new_submodel.py").write_text("y = 1\n")  # a new core module is covered without listing it
    assert fingerprint() != first
    model_fingerprint.cache_clear()


def test_the_real_fingerprint_reads_the_core_folder():
    assert store.CORE_DIR == ROOT / "sim" / "core"
    assert (store.CORE_DIR / "model.py").is_file() and (store.CORE_DIR / "data").is_dir()


def odsim(*args):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


@pytest.mark.slow
def test_run_into_a_folder_another_run_writes_is_refused_before_any_work(tmp_path):
    with FolderLock(tmp_path / ".baseline.lock", str(tmp_path / "baseline")):  # as a running `odsim run` holds it
        result = odsim("run", "--seeds", "1", "--agents", "200", "--out", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "another odsim process is writing there" in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".baseline.lock"]


@pytest.mark.slow
def test_two_scenarios_with_one_name_are_refused_before_any_work(tmp_path):
    copy = tmp_path / "copy.toml"
    copy.write_text('name = "baseline"\nincludes = ["' + (ROOT / "scenarios" / "baseline.toml").as_posix() + '"]\n')
    out = tmp_path / "out"
    result = odsim("run", str(ROOT / "scenarios" / "baseline.toml"), str(copy), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(copy) in lines[0] and "name" in lines[0], result.stderr
    assert not out.exists()
