"""Directional properties of the scenarios, checked on small paired ensembles (member k: same seed and same
parameter draw in every scenario, as in the projections). Each check tests the paired differences over
2030 member by member (a sign test), so it fails if the effect is absent or reversed rather than merely noisy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from sim.running import project as P
from sim.running.executor import Executor
from sim.core.observe import metric_names
from sim.inputs.posterior import parameter_sets

MEMBERS = 16  # a sign test on 8 cannot show an effect that holds in ~90% of members (us_open_push on US firms)
AGENTS = 1500
SCENARIOS = ["baseline", "export_controls_tighten", "export_controls_relax", "security_bans", "us_open_push",
             "closed_price_war", "global_south_access"]

pytestmark = pytest.mark.slow  # the shared fixture runs 7 scenarios x 16 members of 1,500 agents


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    """Scenario -> member x metric array of each member's 2030 average."""
    out = tmp_path_factory.mktemp("directions")
    draws = parameter_sets()
    plan = {name: P.make_jobs(P.load_spec(name), MEMBERS, AGENTS, 0, draws) for name in SCENARIOS}
    with Executor() as executor:
        P.run_jobs([j for jobs in plan.values() for j in jobs], out, executor, progress=False)
    result = {}
    for name, jobs in plan.items():
        dates, stack = P.load_ensemble(out, jobs)
        in_2030 = [i for i, d in enumerate(dates) if d.startswith("2030")]
        result[name] = np.nanmean(stack[:, in_2030, :], axis=1)
    return result


NEGLIGIBLE = 0.002  # a paired difference in a 2030 share this small is a tie: paired runs that re-draw nothing but
# the agents' paths differ by 0.000-0.002 (docs/ODD.md 7.11, the constants screen's noise runs)


def effect(ensembles, scenario, *metrics):
    """Paired differences from baseline, summed over the given metrics, one per member; a difference within
    NEGLIGIBLE of zero is a tie (0), which the sign test leaves out."""
    cols = [metric_names().index(m) for m in metrics]
    diffs = (ensembles[scenario][:, cols] - ensembles["baseline"][:, cols]).sum(axis=1)
    return np.where(np.abs(diffs) <= NEGLIGIBLE, 0.0, diffs)


def relative_effect(ensembles, scenario, metric):
    """Paired change from baseline as a fraction of the member's baseline value."""
    col = metric_names().index(metric)
    base = ensembles["baseline"][:, col]
    return (ensembles[scenario][:, col] - base) / np.maximum(base, 1e-6)


def clearly_negative(diffs):
    """Negative in clearly more members than chance allows (one-sided sign test at 5% over the members whose
    difference is not 0: ties carry no sign) and on average. A sign test, not mean + 2 standard errors: paired
    effects are skewed (a member where Chinese models are marginal barely moves, one where they are big moves by
    tens of points), so a t-like bound can miss an effect that has the same sign in every member."""
    nonzero = diffs[diffs != 0]
    if len(nonzero) == 0:
        return False
    test = binomtest(int((nonzero < 0).sum()), len(nonzero), 0.5, alternative="greater")
    return test.pvalue < 0.05 and diffs.mean() < 0


def clearly_positive(diffs):
    return clearly_negative(-diffs)


def test_tighter_export_controls_lower_the_chinese_share(ensembles):
    assert clearly_negative(effect(ensembles, "export_controls_tighten", "or_share_cn"))


def test_relaxed_export_controls_raise_the_chinese_share(ensembles):
    assert clearly_positive(effect(ensembles, "export_controls_relax", "or_share_cn"))


def test_security_bans_hit_north_america_and_europe_more_than_the_global_south(ensembles):
    """The bans lower the Chinese share in North America and Europe, and by a larger fraction of what each region
    had than in the Global South. Fractions, because posterior draws differ in where Chinese models are used:
    a draw whose Europe barely uses them (share 0.007 in 2030) cannot lose much there in points, while word of
    mouth from banned North American firms can still cost the Global South points."""
    na = effect(ensembles, "security_bans", "share_cn_north_america")
    eu = effect(ensembles, "security_bans", "share_cn_europe")
    assert clearly_negative(na) and clearly_negative(eu)
    south = relative_effect(ensembles, "security_bans", "share_cn_global_south")
    for region in ("north_america", "europe"):
        assert clearly_negative(relative_effect(ensembles, "security_bans", f"share_cn_{region}") - south), region


def test_us_open_push_raises_the_us_open_weight_share(ensembles):
    assert clearly_positive(effect(ensembles, "us_open_push", "or_share_llama", "or_share_gemma", "or_share_gpt_oss"))
    assert clearly_positive(effect(ensembles, "us_open_push", "ent_share_open_us"))


def test_closed_price_war_lowers_the_open_weight_share(ensembles):
    assert clearly_negative(effect(ensembles, "closed_price_war", "or_share_open"))


def test_cheaper_access_in_the_global_south_raises_the_chinese_share_most_there(ensembles):
    south = effect(ensembles, "global_south_access", "share_cn_global_south")
    assert clearly_positive(south)
    for region in ("north_america", "europe"):
        assert clearly_positive(south - effect(ensembles, "global_south_access", f"share_cn_{region}"))
