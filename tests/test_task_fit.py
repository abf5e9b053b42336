"""Task-specific capability (docs/ODD.md 7.4): each workload's persistent fit to a family, a normal drawn in the
kernel from a hash of (run key, agent, workload, family)."""

import numpy as np

import reference_step
from sim import DiffusionModel
from sim.core import kernels


def kernel_normals(key, agent, workload, family) -> np.ndarray:
    agent, workload, family = (np.ascontiguousarray(x, np.int64) for x in np.broadcast_arrays(agent, workload, family))
    out = np.empty(agent.size)
    kernels.task_fit_normals(np.uint64(key), agent.ravel(), workload.ravel(), family.ravel(), out)
    return out


def test_hash_normals_are_standard_and_fixed_by_their_key():
    agent, family = np.divmod(np.arange(100_000), 20)
    z = kernel_normals(7, agent, 3, family)
    assert abs(z.mean()) < 0.015 and abs(z.std() - 1) < 0.015  # 100,000 draws: standard errors 0.003, 0.002
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.015  # neighbouring families' fits are unrelated
    np.testing.assert_array_equal(z, kernel_normals(7, agent, 3, family))  # the same key, the same numbers
    assert not np.any(z == kernel_normals(8, agent, 3, family))  # another run key, other numbers
    assert not np.any(z == kernel_normals(7, agent, 4, family))  # another workload, other numbers
    np.testing.assert_allclose(z, reference_step.task_fit_normals(7, agent, 3, family), rtol=1e-12, atol=1e-12)


def test_run_key_comes_from_the_seed_and_draws_nothing():
    """The key is the seed's (same seed, same key; another seed, another key), and the construct's streams are
    untouched: with the fit on, every month's draws are the off model's."""
    on, off = (DiffusionModel(rng=5, n_agents=300, end="2024-06", task_fit_sd=sd) for sd in (3.0, 0.0))
    assert on.task_fit_key == off.task_fit_key != DiffusionModel(rng=6, n_agents=300, end="2024-06").task_fit_key
    while on.running:
        on.step()
        off.step()
        np.testing.assert_array_equal(on.workload_draws(), off.workload_draws())
    assert not np.array_equal(on.workload_family, off.workload_family)


def families_per_agent(model) -> float:
    """Mean number of distinct families an agent's workloads run on, over agents with at least 5 workloads."""
    many = model.workloads_per_use >= 5
    used = [len(set(row[row >= 0].tolist())) for row in model.workload_family[many].reshape(many.sum(), -1)]
    return float(np.mean(used))


def test_task_fit_spreads_an_agents_workloads_over_more_families():
    runs = {}
    for sd in (0.0, 3.1):
        model = DiffusionModel(rng=2, n_agents=1500, end="2025-06", task_fit_sd=sd)
        while model.running:
            model.step()
        runs[sd] = model
    assert families_per_agent(runs[3.1]) > families_per_agent(runs[0.0])
    assert runs[3.1].observations["ent_top_family_share"] < runs[0.0].observations["ent_top_family_share"]
