"""Every command through a real Dask scheduler and two worker processes on 127.0.0.1 gives the tables of the local\nrun; an unreachable scheduler is refused with one line before any work."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from conftest import calibration_files, same_files, same_untimed_tables, small_calibration, write_spec

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers, each its own process, shared by this module's tests and
    stopped afterwards."""
    from distributed import Client

    tmp_path = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "worker1", "worker2")]
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], cwd=ROOT, stdout=logs[0],
                              stderr=subprocess.STDOUT)]
    try:
        for k in (1, 2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                                           "--no-dashboard", "--name", f"w{k}"], cwd=ROOT, stdout=logs[k],
                                          stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while True:  # the scheduler may take a moment to listen
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


@pytest.mark.slow
def test_dask_scheduler_gives_the_same_table_as_local_workers(tmp_path, dask_cluster):
    spec = write_spec(tmp_path, samples=5, replicates=2)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["sweep", str(spec), "--out", str(local), "--workers", "2", "--quiet"]) == 0
    assert main(["sweep", str(spec), "--out", str(remote), "--scheduler", dask_cluster, "--quiet"]) == 0
    a, b = pd.read_parquet(local / "results.parquet"), pd.read_parquet(remote / "results.parquet")
    assert len(b) == 5 * 2 * 2 and b.run_id.nunique() == 10
    pd.testing.assert_frame_equal(a, b)
    assert "Dask scheduler" in (remote / "manifest.json").read_text()


@pytest.mark.slow
def test_unreachable_scheduler_is_refused_before_any_run(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--connect-timeout", "2",
                 "--quiet"]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_run_on_dask_equals_the_local_run(tmp_path, dask_cluster):
    args = ["run", "--seeds", "3", "--agents", "300"]
    assert main(args + ["--workers", "1", "--out", str(tmp_path / "local")]) == 0
    assert main(args + ["--scheduler", dask_cluster, "--out", str(tmp_path / "dask")]) == 0
    same_files(tmp_path / "local", tmp_path / "dask", ["baseline/timeseries.csv"])


@pytest.mark.slow
def test_project_on_dask_equals_the_local_run(tmp_path, dask_cluster):
    args = ["project", "security_bans", "--members", "3", "--agents", "300", "--no-plots"]
    assert main(args + ["--workers", "2", "--out", str(tmp_path / "local")]) == 0
    assert main(args + ["--scheduler", dask_cluster, "--out", str(tmp_path / "dask")]) == 0
    same_files(tmp_path / "local", tmp_path / "dask",
               ["baseline/quantiles.csv", "security_bans/quantiles.csv", "security_bans/diff_vs_baseline.csv"])


@pytest.mark.slow
def test_calibrate_on_dask_equals_the_local_run(tmp_path, dask_cluster):
    args = ["calibrate", "--quick", "--config", str(small_calibration(tmp_path))]
    assert main(args + ["--workers", "2", "--out", str(tmp_path / "local")]) == 0
    assert main(args + ["--scheduler", dask_cluster, "--out", str(tmp_path / "dask")]) == 0
    same_files(tmp_path / "local", tmp_path / "dask", calibration_files(tmp_path / "local"))
    same_untimed_tables(tmp_path / "local", tmp_path / "dask")


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "--seeds", "1"], ["project", "--members", "1"], ["calibrate", "--quick"]],
                         ids=lambda c: c[0])
def test_unreachable_scheduler_is_refused_by_every_command(tmp_path, capsys, command):
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    assert main(command + ["--scheduler", address, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scheduler" in err[0] and address in err[0], err
    assert not out.exists()
