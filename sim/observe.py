"""Observation model: what each public source would have measured in the simulated world.

The sources see different populations (calibration-figures.md, section 8), so each observable is computed over
the agents that source sees: OpenRouter token shares over agents routing through a marketplace; Hugging Face
downloads and derivatives of open families only; Menlo-style enterprise shares weighted by spend among US firms;
regional shares over all usage. Shares are fractions 0-1; a share with nothing to divide is NaN.
"""

from __future__ import annotations

import functools


from sim.catalogue import ORIGINS, families
from sim.population import REGIONS


def slug(family: str) -> str:
    """Family name as used in metric names: 'gpt-oss' -> 'gpt_oss', 'Qwen' -> 'qwen'."""
    return family.lower().replace("-", "_")


def metric_names() -> list[str]:
    """Every observable, in a stable order."""
    fams = families()
    names = ["or_share_open", "or_share_cn", "or_share_us", "or_share_eu"]
    names += [f"or_share_{slug(f.name)}" for f in fams]
    names += [f"hf_downloads_cum_{slug(f.name)}" for f in fams if f.open_weights]
    names += [f"hf_derivatives_cum_{slug(f.name)}" for f in fams if f.open_weights]
    names += ["hf_downloads_cum_cn", "hf_downloads_cum_us", "hf_new_derivatives_share_cn", "ent_share_open_us"]
    names += [f"share_cn_{region}" for region in REGIONS]
    return names


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else float("nan")


def measure(model) -> dict[str, float]:
    """All observables for the model's current month."""
    usage = model.usage  # demand-weighted use of each family by group (DiffusionModel._usage_by_group)
    out: dict[str, float] = {}

    market = usage["marketplace"]
    total = market.sum()
    out["or_share_open"] = _share(market[model.is_open].sum(), total)
    for origin in ORIGINS:
        out[f"or_share_{origin.lower()}"] = _share(market[model.origin == ORIGINS.index(origin)].sum(), total)
    for name, value in zip(model.family_names, market):
        out[f"or_share_{slug(name)}"] = _share(value, total)

    for lab in model.labs:
        if lab.family.open_weights:
            out[f"hf_downloads_cum_{slug(lab.family.name)}"] = lab.downloads_cum
            out[f"hf_derivatives_cum_{slug(lab.family.name)}"] = lab.derivatives_cum
    cn = model.origin == ORIGINS.index("CN")
    us = model.origin == ORIGINS.index("US")
    out["hf_downloads_cum_cn"] = float(model.downloads_cum[cn & model.is_open].sum())
    out["hf_downloads_cum_us"] = float(model.downloads_cum[us & model.is_open].sum())
    out["hf_new_derivatives_share_cn"] = _share(model.new_derivatives[cn].sum(), model.new_derivatives.sum())

    # Menlo's survey asks what share of a firm's LLM workloads runs on open models, firms weighted by their
    # spend; an agent's weight is its demand (spend scale), so this is the firms' demand-weighted open share.
    firms = usage["us_firms"]
    out["ent_share_open_us"] = _share(firms[model.is_open].sum(), firms.sum())

    for region in REGIONS:
        tokens = usage[f"region_{region}"]
        out[f"share_cn_{region}"] = _share(tokens[cn].sum(), tokens.sum())
    return out


def report(model, name: str) -> float:
    """Module-level reporter: one observable from the model's current measurement."""
    return model.observations[name]


def report_date(model) -> str:
    return model.date


def model_reporters() -> dict:
    """DataCollector model reporters: the date plus every observable (picklable, for batch_run workers)."""
    reporters = {"date": report_date}
    reporters.update({name: functools.partial(report, name=name) for name in metric_names()})
    return reporters
