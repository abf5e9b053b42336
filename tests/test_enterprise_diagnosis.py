"""tools/enterprise_diagnosis.py: its term-by-term utility of a family for US firms adds up to the model's own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from sim.core.model import DiffusionModel

TOOL = Path(__file__).resolve().parents[1] / "tools" / "enterprise_diagnosis.py"
_spec = importlib.util.spec_from_file_location("enterprise_diagnosis", TOOL)
diagnosis = sys.modules["enterprise_diagnosis"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagnosis)


def test_the_base_terms_add_up_to_the_kernels_utility_for_every_released_family():
    """At a state with Chinese families released, a negative North American penalty (a preference, not multiplied
    for firms) and peers in use: price, licence, openness, trust, ecosystem and peers sum to kernels.utility for
    each US firm; the capability terms are the tool's own (use_utilities adds them per workload)."""
    model = DiffusionModel(rng=4, n_agents=400, end="2025-03", trust_cn_shared=0.5, trust_cn_north_america=-1.5)
    while model.running:
        model.step()
    rows = diagnosis.us_firms(model)
    assert len(rows) and model.population.is_firm[rows].all()
    utility = model.utility(rows)
    released = [name for name, on in zip(model.family_names, model.released) if on]
    assert "DeepSeek" in released and "Llama" in released
    for name in released:
        terms = diagnosis.firm_terms(model, name)
        base = sum(terms[t] for t in diagnosis.BASE_TERMS)
        np.testing.assert_allclose(base, utility[:, model.family_names.index(name)], atol=2e-4, err_msg=name)
        assert (terms["capability shortfall"] <= 0).all() and (terms["quality"] <= 0).all()
    table = diagnosis.term_table(model)
    assert table.loc["(share of work)"].between(0, 1).all()
