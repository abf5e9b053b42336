"""Imported by the local pool's forkserver before it forks any worker (Executor._local_pool): loads the model and
its compiled kernels once, so every worker starts ready instead of each loading Numba's cached machine code
(about 0.4 s of CPU per worker) before its first job. A tiny run is the one way to load every kernel a run uses;
it draws from its own generator, so no later run sees a difference. A warm-up that fails only costs that time:
it is reported and the pool starts anyway (each worker then loads what its first job needs)."""

import sys

from sim.running.runner import run_member

WARM_UP = {"n_agents": 50, "end": "2023-03"}  # two months: every phase of the step runs at least once

try:
    run_member(WARM_UP, 0)
except Exception as error:  # noqa: BLE001 - a speed-up must not stop the pool; the jobs will raise for real
    print(f"odsim: worker warm-up failed ({type(error).__name__}: {error}); workers load the model per job",
          file=sys.stderr)
