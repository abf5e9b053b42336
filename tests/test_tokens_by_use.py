"""Marketplace tokens by use (OR10, OR11): the observables read the step's per-(use, family) sums, those sums add
up to the marketplace's per-family tokens, and the programming share they give (OR9) is the agents' routed use
times their coding mix where every marketplace agent routes all its use. The sums themselves are checked against the NumPy reference month by month in
tests/test_kernels.py."""

import numpy as np
import pytest

from sim import DiffusionModel
from sim.core import observe
from sim.core.population import REGIONS, USES

CODING, CHAT, AGENTS = (USES.index(u) for u in ("coding", "chat_roleplay", "agents"))


def test_observables_read_a_hand_made_split_by_use():
    """Two North American marketplace agents with a split by use set by hand (without workloads the split is
    the agent's stored state): Anthropic's share of coding tokens and chat/roleplay's share of open tokens are the
    demand-weighted sums written out."""
    model = DiffusionModel(rng=0, n_agents=400, end="2023-01", workload_scale=0.0)
    family = model.family_names.index
    claude, gpt, llama, qwen = family("Claude"), family("GPT"), family("Llama"), family("Qwen")
    a, b = np.flatnonzero(model.population.region == REGIONS.index("north_america"))[:2]
    model.use_work[:] = 0.0
    model.use_work[a, CODING, claude], model.use_work[a, CHAT, llama], model.use_work[a, AGENTS, qwen] = 0.5, 0.3, 0.2
    model.use_work[b, CODING, gpt], model.use_work[b, CHAT, qwen] = 0.4, 0.6
    model.work[:] = model.use_work.sum(axis=1)
    model.active[:] = model.uses_marketplace[:] = False
    model.active[[a, b]] = model.uses_marketplace[[a, b]] = True
    model.usage = model._usage_by_group()
    out = observe.measure(model)
    wa, wb = model.population.weight[[a, b]]
    assert out["or_programming_share_anthropic"] == pytest.approx(0.5 * wa / (0.5 * wa + 0.4 * wb), rel=1e-6)
    assert out["or_roleplay_share_open"] == pytest.approx((0.3 * wa + 0.6 * wb) / (0.5 * wa + 0.6 * wb), rel=1e-6)


@pytest.mark.parametrize("settings", [{}, {"workload_scale": 0.0}, {"choice": False}],
                         ids=["workloads", "continuous_split", "no_choice"])
def test_tokens_by_use_add_up_to_the_marketplace_and_give_or9s_share_when_all_use_is_routed(settings):
    """With `marketplace_home_share` 1 every marketplace agent routes all its use, so the coding share of the
    per-use tokens (OR9's `or_programming_share`) is each agent's routed use times its coding mix. With the default
    0, agents in China and restricted markets route only their US closed use, whose coding part is not their mix's:
    the two may then differ, but the per-use tokens still add up to the per-family ones."""
    for home_share in (1.0, 0.0):
        model = DiffusionModel(rng=4, n_agents=800, end="2025-06", marketplace_home_share=home_share, **settings)
        months = 0
        while model.running:
            model.step()
            by_use, market = model.usage["marketplace_by_use"], model.usage["marketplace"]
            np.testing.assert_allclose(by_use.sum(axis=0), market, rtol=0, atol=1e-5 * market.sum())
            if home_share == 1.0 and market.sum() > 0:  # OR9 from the agents: routed use times coding mix
                rows = np.flatnonzero(model.uses_marketplace)
                routed = model.population.weight[rows] * model.work[rows].sum(axis=1)
                mix_share = routed @ model.population.use_mix[rows, CODING] / routed.sum()
                assert model.observations["or_programming_share"] == pytest.approx(mix_share, abs=1e-5)
                months += 1
        assert by_use[:, model.is_open].sum() > 0 and by_use[CODING].sum() > 0  # both observables defined
        if home_share == 1.0:
            assert months > 12
