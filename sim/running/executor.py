"""One way to run many independent jobs: in this process, in local worker processes, or on a Dask scheduler.

Every command that runs more than one model (`run`, `project`, `sweep`, `calibrate`) maps a module-level function
over a list of jobs with an `Executor`. A job carries its own seed, so its result depends on the job alone and the
results are identical whatever the executor and the number of workers.

Worker processes
- limit their native thread pools (OpenBLAS, OpenMP, MKL) to one thread: two workers on two cores would otherwise
  each start a thread per core for the model's small matrix products and fight over the cores. A run in this
  process is limited the same way: its products are too small for threads to help.
- die with the command that started them: each worker asks the kernel for SIGKILL when its parent (the forkserver)
  dies (Linux prctl) and a watchdog thread ends it within a second once the command's process is gone, whether
  that process exited, was killed with SIGKILL or stopped on SIGTERM, SIGINT or SIGHUP (see `stop_on_signals`).
- ignore SIGINT: Ctrl-C reaches the whole process group, and the command, not each worker, decides what stops.
When the executor is left because of an exception (an interrupt, a signal turned into one by `stop_on_signals`,
an error), the workers are terminated at once instead of finishing their current job.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")
IN_FLIGHT_PER_WORKER = 4  # jobs submitted ahead per worker: keeps workers busy, memory bounded
WATCHDOG_SECONDS = 0.5  # how often a worker checks that the command that started it is still alive
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # what `timeout`, batch schedulers and a closed terminal send


class SchedulerError(ConnectionError):
    """The Dask scheduler cannot be reached; the message names the address."""


def default_workers() -> int:
    """Cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


# --- in every process that runs jobs ------------------------------------------------------------------------------
_limited = False


def limit_native_threads() -> None:
    """One thread for the native pools already loaded (threadpoolctl) and for those loaded later (environment)."""
    global _limited
    if _limited:
        return
    for name in THREAD_ENV:
        os.environ.setdefault(name, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _limited = True


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _watch(pid: int) -> None:
    while pid_alive(pid):
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


def _worker_init(command_pid: int) -> None:
    """Initializer of every local worker process: die with the command, leave Ctrl-C to it, one native thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch, args=(command_pid,), name="odsim-watchdog", daemon=True).start()
    limit_native_threads()


def _in_dask_worker(fn: Callable, item: Any) -> Any:
    """Dask workers run whatever their cluster gives them; limit threads where our job runs."""
    limit_native_threads()
    return fn(item)


# --- the command's side ---------------------------------------------------------------------------------------------
class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that every `finally` and executor exit runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP stop the command in order, like Ctrl-C: it unwinds, its executor
    terminates the workers and checkpoints stay. A second signal stops at once. The previous handlers return after."""
    def handler(signum, frame):
        for name in STOP_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class Executor:
    """Ordered (or completion-order) map of a module-level function over jobs.

    `workers=1` runs in this process; more start local worker processes on first use; `scheduler="tcp://..."`
    sends jobs to a Dask distributed scheduler (connected at once, so a wrong address fails before any work).
    Use as a context manager, or call close(); functions that receive an executor do not close it."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, connect_timeout: float = 10.0):
        self.workers = max(1, workers or default_workers())
        self.scheduler = scheduler
        self._pool: ProcessPoolExecutor | None = None
        self._client = None
        if scheduler:
            from distributed import Client

            try:
                self._client = Client(scheduler, timeout=f"{connect_timeout}s", set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                raise SchedulerError(f"--scheduler: cannot reach the Dask scheduler at {scheduler}: {err}") from None

    @property
    def description(self) -> str:
        if self._client is not None:
            return f"Dask scheduler {self.scheduler}"
        if self.workers == 1:
            return "in this process"
        return f"local, {self.workers} worker processes"

    @property
    def local(self) -> bool:
        """Jobs run on this machine (in this process or its workers), so they see its files."""
        return self._client is None

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """Stop the workers: after their current jobs, or at once when `abort` (an interrupt or an error)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if abort:
                processes = list((pool._processes or {}).values())  # no public way before Python 3.14
                for process in processes:
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.join(5)
            else:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    # --- backends
    def _local_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Set before the forkserver starts, so it and its workers never size their pools to every core.
            for name in THREAD_ENV:
                os.environ.setdefault(name, "1")
            # forkserver: forking a process that already runs threads (tqdm, Arrow, Dask) can deadlock the child;
            # the server imports the model and loads its compiled kernels once, so workers start ready.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["sim.running.worker_start"])
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_init,
                                             initargs=(os.getpid(),))
        return self._pool

    def _window(self) -> int:
        if self._client is not None:
            workers = self._client.scheduler_info(n_workers=-1).get("workers", {}).values()
            return max(8, IN_FLIGHT_PER_WORKER * sum(w.get("nthreads", 1) for w in workers))
        return IN_FLIGHT_PER_WORKER * self.workers

    def unordered(self, fn: Callable, items: Iterable) -> Iterator[tuple[int, Any]]:
        """(index, result) pairs in the order jobs finish, a bounded number in flight (items are read lazily)."""
        jobs = enumerate(items)
        if self._client is None and self.workers == 1:
            limit_native_threads()
            for i, item in jobs:
                yield i, fn(item)
            return
        pending: dict = {}  # future -> index of its job
        if self._client is not None:
            from distributed import as_completed

            client, queue = self._client, as_completed(loop=self._client.loop)

            def submit(item):
                future = client.submit(_in_dask_worker, fn, item, pure=False)
                queue.add(future)
                return future

            finished = iter(queue)
        else:
            pool = self._local_pool()

            def submit(item):
                return pool.submit(fn, item)

            def local_finished():
                while pending:
                    yield from wait(list(pending), return_when=FIRST_COMPLETED).done

            finished = local_finished()
        for i, item in itertools.islice(jobs, self._window()):
            pending[submit(item)] = i
        try:
            for future in finished:
                i = pending.pop(future)
                result = future.result()
                if hasattr(future, "release"):  # Dask: let the cluster forget the result
                    future.release()
                yield i, result
                for j, item in itertools.islice(jobs, 1):
                    pending[submit(item)] = j
        finally:
            for future in pending:
                future.cancel()

    def imap(self, fn: Callable, items: Iterable) -> Iterator[Any]:
        """Results in the order of `items`, each as soon as it and all before it are done."""
        held: dict[int, Any] = {}
        following = 0
        for i, result in self.unordered(fn, items):
            held[i] = result
            while following in held:
                yield held.pop(following)
                following += 1

    def gather(self, fn: Callable, items: Iterable, bar=None, on_each: Callable[[int], None] | None = None) -> list:
        """imap's results as a list, ticking a progress `bar` (tqdm) and calling `on_each(i)` as each arrives:
        the batch loop every stage that reports progress shares."""
        results = []
        for i, result in enumerate(self.imap(fn, items)):
            results.append(result)
            if bar is not None:
                bar.update()
            if on_each is not None:
                on_each(i)
        return results
