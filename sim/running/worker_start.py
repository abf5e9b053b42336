"""Imported by the local pool's forkserver before it forks any worker (Executor._local_pool): loads the model and
its compiled kernels once, so every worker starts ready instead of each loading Numba's cached machine code
(about 0.4 s of CPU per worker) before its first job. A tiny run is the one way to load every kernel a run uses;
it draws from its own generator, so no later run sees a difference."""

from sim.running.runner import run_member

WARM_UP = {"n_agents": 50, "end": "2023-03"}  # two months: every phase of the step runs at least once

run_member(WARM_UP, 0)
