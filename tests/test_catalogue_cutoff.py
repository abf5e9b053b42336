"""The hindcast's catalogue cutoff: a run cut at a month never reads a catalogue row released after it, and its
labs release by their own stochastic process from then on (default runs are covered by tests/test_golden.py)."""

import pytest

from sim.core import catalogue
from sim.core.model import DiffusionModel
from sim.core.parameters import resolve

CUTOFF = "2025-03"


def test_a_hindcast_never_reads_a_catalogue_row_dated_after_its_cutoff(read_log):
    model = DiffusionModel(rng=3, n_agents=200, end="2026-01", catalogue_cutoff=CUTOFF)
    while model.running:
        model.step()
    after = {key for month, key in read_log if month > CUTOFF}
    before = {key for month, key in read_log if month <= CUTOFF}
    assert after == {"release_date"}  # looked at only to leave the row out
    assert {"eci", "api_price_in_usd_per_mtok", "family"} <= before  # the instrument does see real reads
    # Families first released after the cutoff (Kimi 2025-07, gpt-oss 2025-08) never appear.
    released = dict(zip(model.family_names, model.released))
    assert not released["Kimi"] and not released["gpt-oss"] and released["DeepSeek"]


def test_after_the_cutoff_labs_release_stochastically_from_what_was_known():
    cut = [DiffusionModel(rng=seed, n_agents=100, end="2025-12", catalogue_cutoff=CUTOFF) for seed in (0, 1)]
    for model in cut:
        while model.running:
            model.step()
    known = {r.model for r in catalogue.releases(CUTOFF)}
    assert known and max(r.date for r in catalogue.releases(CUTOFF)) <= CUTOFF
    assert len(catalogue.releases(CUTOFF)) < len(catalogue.releases())
    capabilities = [sorted(lab.base_capability for lab in model.labs if lab.released) for model in cut]
    assert capabilities[0] != capabilities[1]  # the releases after the cutoff are the seeds' own draws
    assert catalogue.frontier_trend(CUTOFF).end == CUTOFF


@pytest.mark.parametrize("bad", ["2023-06", "2027-01", "2025-3", "soon"])
def test_a_cutoff_outside_the_catalogue_is_refused_naming_the_parameter(bad):
    with pytest.raises(ValueError, match="catalogue_cutoff|not a month"):
        resolve({"catalogue_cutoff": bad})
